package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.reference.ReferenceKernels;
import io.ouro.worker.reference.Rope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static io.ouro.worker.opencl.KernelAsserts.slice;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each OpenCL kernel against its reference op on real OpenCL (pocl in CI), on shapes that are not
 * multiples of the tile (16) or work-group (64) sizes. Every test asserts that the launch ran as
 * OpenCL; results are downloaded explicitly, so a missing transfer fails here too.
 */
class KernelParityOpenClTest {

    static final int PARAMS = 40_000, ACT = 120_000;
    static OpenClOps ops;
    final SplittableRandom rng = new SplittableRandom(17);

    @BeforeAll
    static void open() {
        ops = new OpenClOps(OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec())), PARAMS, ACT);
    }

    @AfterAll
    static void close() {
        ops.close();
    }

    void randomize(Buffer b) {
        float[] a = ops.host(b);
        for (int i = 0; i < ops.size(b); i++) {
            a[i] = (float) rng.nextGaussian();
        }
        ops.upload(b);
    }

    float[] fetch(Buffer b) {
        assertTrue(ops.isRunningOpenCl(), "the kernel must run as OpenCL");
        ops.download(b);
        return ops.read(b);
    }

    static void assertClose(String what, float[] expected, int eOff, float[] actual, int aOff, int count, double tol) {
        KernelAsserts.assertClose("opencl kernel", what, expected, eOff, actual, aOff, count, tol);
    }

    @Test
    void linearForwardAndBothGradients() {
        linear(37, 45, 29, 5, 3000, 5000, 8000, 11, 700);
    }

    @Test
    void linearAcrossSeveralWorkGroupsAndKTiles() {
        linear(130, 70, 150, 1, 9200, 29000, 49000, 3, 10000);
    }

    @Test
    void linearWithTransposedOperandsOnCpuDevices() {
        // with scratch, the dot-product kernel on a CPU device transposes the operands that are not k-contiguous
        // (the register-blocked GEMM, which packs its operands there instead, is GemmOpenClTest's)
        ops.setTransposeScratch(80_000, 40_000);
        ops.useGemm(OpenClOps.GemmKernel.DOT);
        try {
            ops.startProfile();
            linear(37, 45, 29, 5, 3000, 5000, 8000, 11, 700);
            linear(130, 70, 150, 1, 9200, 29000, 49000, 3, 10000);
            assertEquals(ops.cpuDevice(), ops.profile().containsKey("transpose"),
                    "a CPU device takes the transposing path, a GPU the tiled kernel");
            assertEquals(ops.cpuDevice(), ops.profile().containsKey(OpenClOps.DOT_NAME), "and then the dot products");
        } finally {
            ops.setTransposeScratch(-1, 0);
            ops.useGemm(OpenClOps.GemmKernel.AUTO);
        }
    }

    void linear(int n, int in, int o, int xOff, int outOff, int doutOff, int dxOff, int wOff, int dwOff) {
        randomize(Buffer.PARAMS);
        randomize(Buffer.GRADS);
        randomize(Buffer.ACT);
        float[] w = ops.host(Buffer.PARAMS).clone(), g = ops.host(Buffer.GRADS).clone(), act = ops.host(Buffer.ACT).clone();

        ops.linearForward(outOff, xOff, Buffer.PARAMS, wOff, n, in, o);
        ops.linearBackwardInput(dxOff, doutOff, Buffer.PARAMS, wOff, n, in, o);
        ops.linearBackwardWeight(Buffer.GRADS, dwOff, doutOff, xOff, n, in, o);
        float[] dAct = fetch(Buffer.ACT), dG = fetch(Buffer.GRADS);

        ReferenceKernels.matmulForward(act, outOff, act, xOff, w, wOff, n, in, o);
        ReferenceKernels.matmulBackwardInput(act, dxOff, act, doutOff, w, wOff, n, in, o);
        ReferenceKernels.matmulBackwardWeight(g, dwOff, act, doutOff, act, xOff, n, in, o);
        String shape = " " + n + "x" + in + "x" + o;
        assertClose("linear forward" + shape, act, outOff, dAct, outOff, n * o, 1e-5);
        assertClose("linear input gradient" + shape, act, dxOff, dAct, dxOff, n * in, 1e-5);
        assertClose("linear weight gradient" + shape, g, dwOff, dG, dwOff, o * in, 1e-5);
        assertClose("untouched activations", act, 0, dAct, 0, xOff + n * in, 0);
    }

    @Test
    void rmsNormForwardAndBackward() {
        int n = 19, d = 70, xOff = 0, yOff = 2000, rOff = 4000, dyOff = 5000, dxOff = 8000, wOff = 100, dwOff = 300;
        randomize(Buffer.PARAMS);
        randomize(Buffer.GRADS);
        randomize(Buffer.ACT);
        float[] w = ops.host(Buffer.PARAMS).clone(), g = ops.host(Buffer.GRADS).clone(), act = ops.host(Buffer.ACT).clone();

        ops.rmsnormForward(yOff, rOff, xOff, wOff, n, d, 1e-6f);
        ops.rmsnormBackward(dxOff, dwOff, dyOff, xOff, rOff, wOff, n, d);
        float[] dAct = fetch(Buffer.ACT), dG = fetch(Buffer.GRADS);

        float[] y = new float[n * d], rstd = new float[n], dy = new float[n * d], x = new float[n * d];
        float[] dx = new float[n * d], dw = new float[d];
        System.arraycopy(act, xOff, x, 0, n * d);
        System.arraycopy(act, dyOff, dy, 0, n * d);
        System.arraycopy(act, dxOff, dx, 0, n * d);
        System.arraycopy(g, dwOff, dw, 0, d);
        ReferenceKernels.rmsnormForward(y, rstd, x, w, wOff, n, d, 1e-6f);
        ReferenceKernels.rmsnormBackward(dx, dw, 0, dy, x, rstd, w, wOff, n, d);
        assertClose("rmsnorm forward", y, 0, dAct, yOff, n * d, 1e-5);
        assertClose("rmsnorm rstd", rstd, 0, dAct, rOff, n, 1e-5);
        assertClose("rmsnorm input gradient", dx, 0, dAct, dxOff, n * d, 1e-5);
        assertClose("rmsnorm weight gradient", dw, 0, dG, dwOff, d, 1e-5);
    }

    @Test
    void swiGluForwardAndBackward() {
        int count = 1001, gOff = 0, uOff = 2000, mOff = 4000, dmOff = 6000, dgOff = 8000, duOff = 10000;
        randomize(Buffer.ACT);
        float[] act = ops.host(Buffer.ACT).clone();
        ops.swigluForward(mOff, gOff, uOff, count);
        ops.swigluBackward(dgOff, duOff, dmOff, gOff, uOff, count);
        float[] dAct = fetch(Buffer.ACT);

        float[] g = slice(act, gOff, count), u = slice(act, uOff, count), dm = slice(act, dmOff, count);
        float[] m = new float[count], dg = slice(act, dgOff, count), du = slice(act, duOff, count);
        ReferenceKernels.swigluForward(m, g, u, count);
        ReferenceKernels.swigluBackward(dg, du, dm, g, u, count);
        assertClose("swiglu forward", m, 0, dAct, mOff, count, 1e-5);
        assertClose("swiglu gate gradient", dg, 0, dAct, dgOff, count, 1e-5);
        assertClose("swiglu up gradient", du, 0, dAct, duOff, count, 1e-5);
    }

    @Test
    void ropeForwardAndTranspose() {
        int batch = 3, seqLen = 7, heads = 3, hd = 10, rows = batch * seqLen, size = rows * heads * hd;
        float[] cos = new float[seqLen * hd / 2], sin = new float[seqLen * hd / 2];
        Rope.tables(cos, sin, seqLen, hd, 10_000);
        ops.setRopeTables(cos, sin);
        randomize(Buffer.ACT);
        float[] act = ops.host(Buffer.ACT).clone();
        ops.rope(0, rows, seqLen, heads, hd, true);
        ops.rope(size, rows, seqLen, heads, hd, false);
        float[] dAct = fetch(Buffer.ACT);

        float[] fwd = slice(act, 0, size), bwd = slice(act, size, size);
        ReferenceKernels.ropeForward(fwd, cos, sin, rows, seqLen, heads, hd);
        ReferenceKernels.ropeBackward(bwd, cos, sin, rows, seqLen, heads, hd);
        assertClose("rope forward", fwd, 0, dAct, 0, size, 1e-6);
        assertClose("rope backward", bwd, 0, dAct, size, size, 1e-6);
    }

    @Test
    void fillAndResidualAdd() {
        randomize(Buffer.ACT);
        float[] act = ops.host(Buffer.ACT).clone();
        ops.add(100, 3000, 777);
        ops.fill(Buffer.ACT, 5000, 131, 0f);
        float[] dAct = fetch(Buffer.ACT);
        for (int i = 0; i < 777; i++) {
            act[100 + i] += act[3000 + i];
        }
        java.util.Arrays.fill(act, 5000, 5131, 0f);
        assertClose("residual add and fill", act, 0, dAct, 0, ACT, 0);
    }

    /** Memory-efficient attention (online softmax, probabilities recomputed) against the reference op. */
    @Test
    void causalAttentionForwardAndBackward() {
        int batch = 2, seqLen = 37, heads = 3, hd = 10, size = batch * seqLen * heads * hd;
        int q = 0, k = size, v = 2 * size, out = 3 * size, lse = 4 * size, dout = 5 * size, dq = 6 * size,
                dk = 7 * size, dv = 8 * size;
        randomize(Buffer.ACT);
        float[] act = ops.host(Buffer.ACT).clone();
        ops.attentionForward(out, lse, q, k, v, batch, seqLen, heads, hd);
        ops.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, batch, seqLen, heads, hd);
        float[] dAct = fetch(Buffer.ACT);

        float[] o = new float[size], probs = new float[batch * heads * seqLen * seqLen];
        float[] gq = slice(act, dq, size), gk = slice(act, dk, size), gv = slice(act, dv, size);
        ReferenceKernels.attentionForward(o, probs, slice(act, q, size), slice(act, k, size), slice(act, v, size),
                batch, seqLen, heads, hd);
        ReferenceKernels.attentionBackward(gq, gk, gv, slice(act, dout, size), probs, slice(act, q, size),
                slice(act, k, size), slice(act, v, size), batch, seqLen, heads, hd);
        assertClose("attention forward", o, 0, dAct, out, size, 1e-5);
        assertClose("attention dq", gq, 0, dAct, dq, size, 1e-5);
        assertClose("attention dk", gk, 0, dAct, dk, size, 1e-5);
        assertClose("attention dv", gv, 0, dAct, dv, size, 1e-5);
    }

    /**
     * Elementwise ops long enough that a CPU device gives each work item a run of several elements
     * (4096 items in all), with counts that do not divide evenly: every element is touched exactly once.
     */
    @Test
    void elementwiseOpsInContiguousRuns() {
        int count = 4096 * 3 + 7, a = 11, b = 20_011, c = 40_013, d = 60_017;
        randomize(Buffer.ACT);
        float[] act = ops.host(Buffer.ACT).clone();
        ops.add(a, b, count);
        ops.copy(c, a, count);
        ops.swigluForward(d, b, c, 5003);
        ops.fill(Buffer.ACT, b + 3, count - 5, 0.5f);
        float[] dAct = fetch(Buffer.ACT);
        for (int i = 0; i < count; i++) {
            act[a + i] += act[b + i];
        }
        System.arraycopy(act, a, act, c, count);
        float[] m = new float[5003];
        ReferenceKernels.swigluForward(m, slice(act, b, 5003), slice(act, c, 5003), 5003);
        System.arraycopy(m, 0, act, d, 5003);
        java.util.Arrays.fill(act, b + 3, b + count - 2, 0.5f);
        assertClose("elementwise ops in runs", act, 0, dAct, 0, ACT, 1e-6);

        randomize(Buffer.GRADS);
        float[] g = ops.host(Buffer.GRADS).clone();
        ops.scaleGrads(0.25f);
        float[] dG = fetch(Buffer.GRADS);
        for (int i = 0; i < PARAMS; i++) {
            g[i] *= 0.25f;
        }
        assertClose("gradient scale in runs", g, 0, dG, 0, PARAMS, 0);
    }
}
