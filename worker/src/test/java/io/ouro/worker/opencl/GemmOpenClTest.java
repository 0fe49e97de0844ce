package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.Bf16;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.opencl.OpenClOps.GemmKernel;
import io.ouro.worker.reference.ReferenceKernels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hand-written OpenCL C GEMMs ({@link ClKernels}: register-blocked and tiled) against the translated twin and
 * the Java reference, in the step's three layouts (forward, input gradient, weight gradient), on shapes that are
 * not multiples of any tile (8 x 16 micro-tiles, 64 x 64 work-group tiles), with and without the transpose scratch.
 */
class GemmOpenClTest {

    static final int PARAMS = 60_000, ACT = 200_000, SCRATCH = 150_000;
    static OpenClOps ops;
    final SplittableRandom rng = new SplittableRandom(23);

    /**
     * The ops' {@code train.matmul}: fp32 unless {@code -Douro.test.matmul=bf16_tensor} (deploy/gpu-check.sh runs the
     * tensor-core test so, in a process of its own, where on an NVIDIA GPU that passes the probe the instruction runs).
     */
    @BeforeAll
    static void open() {
        ops = new OpenClOps(OpenClDevices.select(DeviceSpec.parse(TestDevice.spec())), new int[] {PARAMS}, ACT, 1, 1,
                new int[0], true, MatmulPrecision.parse(System.getProperty("ouro.test.matmul", "fp32")));
    }

    @AfterAll
    static void close() {
        ops.close();
    }

    @ParameterizedTest
    @EnumSource(value = GemmKernel.class, names = {"OUTER", "TILED"})
    void handWrittenMatchesReferenceAndTranslatedTwin(GemmKernel kernel) {
        // 517 rows: past the row count from which B is packed (forward and input gradient), the rest read in place
        int[][] shapes = {{37, 45, 29}, {130, 70, 150}, {1, 17, 3}, {9, 200, 65}, {67, 8, 16}, {517, 37, 29}};
        for (int[] s : shapes) {
            for (boolean scratch : new boolean[]{true, false}) {
                compare(kernel, s[0], s[1], s[2], scratch);
            }
        }
    }

    /**
     * The tensor-core GEMM (gemm_tc.cl) in the three layouts against the Java reference on the operands rounded to
     * bfloat16: on a device without the instruction (pocl here) its emulation, which runs the kernel's staging (the
     * rounding, the swizzled double-buffered local tiles) and reads every fragment element from the staged tiles
     * where the PTX ISA puts it, so a wrong fragment index or a stage in the wrong buffer is off by O(1); on an
     * NVIDIA GPU that passed the probe, with the ops opened for bf16_tensor (see {@link #open}), the instruction
     * itself (and ldmatrix where the probe's second check passed). The fragment registers themselves are checked bit
     * for bit in {@link Bf16RoundingOpenClTest#theTensorCoreOperandLoaderRoundsBitForBit}.
     */
    @Test
    void tensorCoreKernelMatchesTheBf16RoundedReference() {
        // (n, in, o): the forward's k is in, the input gradient's o, the weight gradient's n; none a multiple of the
        // 128 x 128 block or the 32-deep stage; k = 517 and 300 walk 17 and 10 stages (the double buffer swaps each);
        // each operand region stays clear of the outputs written before it is read (x: n * in <= 19,997 floats)
        int[][] shapes = {{37, 45, 29}, {130, 70, 150}, {1, 17, 3}, {517, 37, 29}, {60, 300, 40}, {150, 129, 130}};
        // the weights (B of the forward and the input gradient) fetched as fp32 and rounded on staging, then read
        // from their bfloat16 copy (train.matmul bf16_tensor's default), made once per change of the weights
        for (boolean copy : new boolean[] {false, true}) {
            ops.useWeightCopy(copy);
            ops.startProfile();
            try {
                for (int[] s : shapes) {
                    compareTensor(s[0], s[1], s[2]);
                }
            } finally {
                ops.useWeightCopy(false);
            }
            String name = ops.tensorCores() ? OpenClOps.TC_NAME : OpenClOps.TC_EMULATED_NAME;
            assertEquals(3L * shapes.length, ops.profile().get(name)[1], "every product ran " + name);
            assertEquals(copy ? shapes.length : 0L, KernelAsserts.launches(ops, DeviceOp.CL_WEIGHT_BF16),
                    "the weight copy made once per new weights (with the copy) or never (without)");
        }
        if (!TensorCores.nvidia(ops.device())) {
            assertEquals("not an NVIDIA device", TensorCores.run(ops.device()));
            assertFalse(ops.tensorCores(), "no tensor cores without NVIDIA's compiler");
        }
    }

    /**
     * The bfloat16 copies the tensor-core GEMM reads (the weights' copy, and activation copies in two slots of the
     * arena from 100,000) change no bit of its results: the three products of each shape with both copies
     * against the same products rounding every operand as it is staged. The copies are made once and reused: the
     * weights' once, the activations' twice (x by the forward, reused as the weight gradient's B; dY by the input
     * gradient, reused as the weight gradient's A). A device op writing an operand's range (a fill), or a product whose
     * output overlaps it, makes it again; a product writing elsewhere does not.
     */
    @Test
    void theBf16CopiesChangeNoBitAndAreMadeOncePerChange() {
        int[][] shapes = {{37, 45, 29}, {130, 70, 150}, {1, 17, 3}, {517, 37, 29}, {150, 129, 130}};
        int xOff = 3, outOff = 20_000, doutOff = 50_000, dxOff = 80_000, wOff = 7, dwOff = 30_011;
        ops.setActivationCopy(new int[] {100_000, 112_500, 125_000, 137_500}, 25_000);
        try {
            for (int[] sh : shapes) {
                int n = sh[0], in = sh[1], o = sh[2];
                randomizeAll();
                float[] g = ops.host(Buffer.GRADS).clone(), act = ops.host(Buffer.ACT).clone();
                ops.useWeightCopy(false);
                ops.useActivationCopy(false);
                float[][] plain = run(GemmKernel.TENSOR, n, in, o, xOff, outOff, doutOff, dxOff, wOff, dwOff);
                restore(Buffer.ACT, act);
                restore(Buffer.GRADS, g);
                ops.useWeightCopy(true);
                ops.useActivationCopy(true);
                ops.startProfile();
                float[][] copied = run(GemmKernel.TENSOR, n, in, o, xOff, outOff, doutOff, dxOff, wOff, dwOff);
                String shape = n + "x" + in + "x" + o;
                assertEquals(1L, KernelAsserts.launches(ops, DeviceOp.CL_WEIGHT_BF16), "the weight copy made once, " + shape);
                assertEquals(2L, KernelAsserts.launches(ops, DeviceOp.CL_ACT_BF16), "x and dY copied once each, " + shape);
                assertSameBits("outputs in the arena " + shape, plain[0], copied[0], 100_000);
                assertSameBits("weight gradient " + shape, plain[1], copied[1], plain[1].length);

                // a product writing elsewhere keeps x's copy; one writing over dY drops dY's; a fill over x drops x's
                ops.startProfile();
                ops.linearForward(outOff, xOff, Buffer.PARAMS, wOff, n, in, o);
                assertEquals(0L, KernelAsserts.launches(ops, DeviceOp.CL_ACT_BF16), "x's copy reused, " + shape);
                ops.linearForward(doutOff, xOff, Buffer.PARAMS, wOff, n, in, o);
                ops.linearBackwardInput(dxOff, doutOff, Buffer.PARAMS, wOff, n, in, o);
                assertEquals(1L, KernelAsserts.launches(ops, DeviceOp.CL_ACT_BF16), "dY written by a product: copied again, " + shape);
                ops.fill(Buffer.ACT, xOff + n * in / 2, 1, 3.5f);
                ops.linearForward(outOff, xOff, Buffer.PARAMS, wOff, n, in, o);
                assertEquals(2L, KernelAsserts.launches(ops, DeviceOp.CL_ACT_BF16), "x written by a fill: copied again, " + shape);
                ops.download(Buffer.ACT);
                float[] withCopies = ops.read(Buffer.ACT).clone();
                ops.useActivationCopy(false);
                ops.linearForward(outOff, xOff, Buffer.PARAMS, wOff, n, in, o);
                ops.download(Buffer.ACT);
                assertSameBits("the forward after the fill " + shape, ops.read(Buffer.ACT), withCopies, 100_000);
                ops.useActivationCopy(true);
            }
        } finally {
            ops.setActivationCopy(new int[] {0, 0, 0, 0}, 0);
            ops.useWeightCopy(false);
            ops.useGemm(GemmKernel.AUTO);
        }
    }

    static void assertSameBits(String what, float[] expected, float[] actual, int count) {
        for (int i = 0; i < count; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                throw new AssertionError(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i]);
            }
        }
    }

    void compareTensor(int n, int in, int o) {
        int xOff = 3, outOff = 20_000, doutOff = 50_000, dxOff = 80_000, wOff = 7, dwOff = 30_011;
        try {
            randomizeAll();
            float[] w = ops.host(Buffer.PARAMS).clone(), g = ops.host(Buffer.GRADS).clone(), act = ops.host(Buffer.ACT).clone();
            float[][] r = run(GemmKernel.TENSOR, n, in, o, xOff, outOff, doutOff, dxOff, wOff, dwOff);
            float[] wr = bf16(w), actR = bf16(act), exp = act.clone(), expG = g.clone(), fp32 = act.clone();
            ReferenceKernels.matmulForward(exp, outOff, actR, xOff, wr, wOff, n, in, o);
            ReferenceKernels.matmulBackwardInput(exp, dxOff, actR, doutOff, wr, wOff, n, in, o);
            ReferenceKernels.matmulBackwardWeight(expG, dwOff, actR, doutOff, actR, xOff, n, in, o);
            ReferenceKernels.matmulForward(fp32, outOff, act, xOff, w, wOff, n, in, o);
            String shape = "tensor " + n + "x" + in + "x" + o;
            assertClose("forward " + shape, exp, outOff, r[0], outOff, n * o);
            assertClose("input gradient " + shape, exp, dxOff, r[0], dxOff, n * in);
            assertClose("weight gradient " + shape, expG, dwOff, r[1], dwOff, o * in);
            assertClose("untouched activations " + shape, act, 0, r[0], 0, outOff, 0);
            assertClose("untouched gradients past dw " + shape, g, dwOff + o * in, r[1], dwOff + o * in, 1000, 0);
            // the operands were rounded: against fp32 operands the products differ, each by at most 2^-7 of itself
            // (two roundings of at most 2^-8, bfloat16's unit roundoff), so an output by at most 2^-7 sum |x w|
            // (plus the fp32 sums' few ulps)
            double worst = 0, over = 0;
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < o; j++) {
                    double abs = 0;
                    for (int q = 0; q < in; q++) {
                        abs += Math.abs((double) act[xOff + i * in + q] * w[wOff + j * in + q]);
                    }
                    double diff = Math.abs(fp32[outOff + i * o + j] - r[0][outOff + i * o + j]);
                    worst = Math.max(worst, diff);
                    over = Math.max(over, diff - (abs / 128 + 1e-4));
                }
            }
            assertTrue(worst > 1e-5, shape + ": the operands were not rounded (" + worst + " from fp32's)");
            assertTrue(over <= 0, shape + ": beyond bfloat16's bound by " + over);
        } finally {
            ops.useGemm(GemmKernel.AUTO);
        }
    }

    static float[] bf16(float[] x) {
        float[] r = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            r[i] = Bf16.round(x[i]);
        }
        return r;
    }

    @Test
    void theHandWrittenKernelRunsAndTheSourceIsSpliced() {
        String src = ClKernels.source();
        assertTrue(src.contains("ouro_gemm_outer") && src.contains("ouro_hand(this, gx, gy, lx, ly);"), "spliced source");
        assertTrue(src.contains("__kernel void run("), "Aparapi's translation is kept");
        ops.useGemm(GemmKernel.AUTO);
        ops.setTransposeScratch(SCRATCH, ACT - SCRATCH);
        try {
            ops.startProfile();
            randomizeAll();
            ops.linearForward(20_000, 0, Buffer.PARAMS, 0, 600, 30, 40);
            ops.linearBackwardInput(50_000, 20_000, Buffer.PARAMS, 0, 600, 30, 40);
            ops.linearBackwardWeight(Buffer.GRADS, 0, 20_000, 0, 600, 30, 40);
            assertEquals(3, ops.profile().get("gemm (OpenCL C)")[1], "the hand-written GEMM ran all three layouts");
            if (ops.cpuDevice()) {
                assertEquals(2, ops.profile().get("gemm pack (OpenCL C)")[1], "B packed for 600 rows, not for 40");
            }
            assertTrue(ops.isRunningOpenCl());
        } finally {
            ops.setTransposeScratch(-1, 0);
        }
    }

    void randomizeAll() {
        for (Buffer b : new Buffer[]{Buffer.PARAMS, Buffer.GRADS, Buffer.ACT}) {
            float[] a = ops.host(b);
            for (int i = 0; i < ops.size(b); i++) {
                a[i] = (float) rng.nextGaussian();
            }
            ops.upload(b);
        }
    }

    /** The three layouts with {@code kernel}, then with the translated twin, both against Matmul. */
    void compare(GemmKernel kernel, int n, int in, int o, boolean scratch) {
        int xOff = 3, outOff = 20_000, doutOff = 50_000, dxOff = 80_000, wOff = 7, dwOff = 30_011;
        ops.setTransposeScratch(scratch ? SCRATCH : -1, scratch ? ACT - SCRATCH : 0);
        try {
            randomizeAll();
            float[] w = ops.host(Buffer.PARAMS).clone(), g = ops.host(Buffer.GRADS).clone(), act = ops.host(Buffer.ACT).clone();
            float[][] hand = run(kernel, n, in, o, xOff, outOff, doutOff, dxOff, wOff, dwOff);
            restore(Buffer.ACT, act);
            restore(Buffer.GRADS, g);
            float[][] twin = run(GemmKernel.TRANSLATED, n, in, o, xOff, outOff, doutOff, dxOff, wOff, dwOff);

            ReferenceKernels.matmulForward(act, outOff, act, xOff, w, wOff, n, in, o);
            ReferenceKernels.matmulBackwardInput(act, dxOff, act, doutOff, w, wOff, n, in, o);
            ReferenceKernels.matmulBackwardWeight(g, dwOff, act, doutOff, act, xOff, n, in, o);
            String shape = kernel + " " + n + "x" + in + "x" + o + (scratch ? " scratch" : "");
            for (float[][] r : new float[][][]{hand, twin}) {
                String who = (r == hand ? "" : "translated, ") + shape;
                assertClose("forward " + who, act, outOff, r[0], outOff, n * o);
                assertClose("input gradient " + who, act, dxOff, r[0], dxOff, n * in);
                assertClose("weight gradient " + who, g, dwOff, r[1], dwOff, o * in);
            }
            assertClose("hand vs translated forward " + shape, twin[0], outOff, hand[0], outOff, n * o);
            assertClose("hand vs translated weight gradient " + shape, twin[1], dwOff, hand[1], dwOff, o * in);
            // nothing outside the outputs (and the scratch) was written
            assertClose("untouched activations " + shape, act, 0, hand[0], 0, outOff, 0);
            assertClose("untouched gradients " + shape, g, 0, hand[1], 0, dwOff, 0);
            assertClose("untouched gradients past dw " + shape, g, dwOff + o * in, hand[1], dwOff + o * in, 1000, 0);
        } finally {
            ops.setTransposeScratch(-1, 0);
            ops.useGemm(GemmKernel.AUTO);
        }
    }

    float[][] run(GemmKernel kernel, int n, int in, int o, int xOff, int outOff, int doutOff, int dxOff, int wOff, int dwOff) {
        ops.useGemm(kernel);
        ops.linearForward(outOff, xOff, Buffer.PARAMS, wOff, n, in, o);
        ops.linearBackwardInput(dxOff, doutOff, Buffer.PARAMS, wOff, n, in, o);
        ops.linearBackwardWeight(Buffer.GRADS, dwOff, doutOff, xOff, n, in, o);
        assertTrue(ops.isRunningOpenCl(), "the kernel must run as OpenCL");
        ops.download(Buffer.ACT);
        ops.download(Buffer.GRADS);
        return new float[][]{ops.read(Buffer.ACT).clone(), ops.read(Buffer.GRADS).clone()};
    }

    void restore(Buffer b, float[] values) {
        System.arraycopy(values, 0, ops.host(b), 0, values.length);
        ops.upload(b);
    }

    static void assertClose(String what, float[] expected, int eOff, float[] actual, int aOff, int count) {
        // fp32 sums in another order (the reference's vector lanes, the kernels' sequential fma): a few ulps of the
        // partial sums, which reach ~10 here; a wrong index or a missed tile is off by O(1)
        assertClose(what, expected, eOff, actual, aOff, count, 4e-5);
    }

    static void assertClose(String what, float[] expected, int eOff, float[] actual, int aOff, int count, double tol) {
        KernelAsserts.assertClose("gemm", what, expected, eOff, actual, aOff, count, tol);
    }
}
