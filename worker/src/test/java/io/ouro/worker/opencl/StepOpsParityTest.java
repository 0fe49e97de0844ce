package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.TestData;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.reference.JavaOps;
import io.ouro.worker.step.Region;
import io.ouro.worker.step.StepOps;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every op of the {@link StepOps} interface on the OpenCL backend against {@link JavaOps} (the "naive control"):
 * the same inputs into both, each output compared, on a shape that is not a multiple of the kernels' tiles
 * (26 rows, d 24, 3 heads of 8, FFN 40, vocabulary 61). Tolerance: 2e-5 of the output's largest magnitude (AdamW's
 * moments: 1e-6).
 */
class StepOpsParityTest {

    private static final double TOL = 2e-5;
    /**
     * AdamW's moments are elementwise (no sums, so no summation order): they differ by rounding alone, an ulp or
     * two where a device fuses multiply and add (measured on pocl: 1.9e-9 of 4e-2, 5e-8); 1e-6 leaves margin,
     * while an update skipped or applied twice moves them by a tenth of the gradient.
     */
    private static final double MOMENT_TOL = 1e-6;
    private static final int SLOT = 2048;
    private final LoopConfig cfg = new LoopConfig(61, 24, 2, 3, 40, 3, 10_000, 1e-6, 0.1, 0.1, 21);
    private final ParamLayout layout = new ParamLayout(cfg);
    private final int batch = 2, seqLen = 13, n = batch * seqLen, d = cfg.hidden(), f = cfg.ffn(), v = cfg.vocab();
    private final int heads = cfg.heads(), hd = cfg.headDim(), steps = cfg.steps();
    private final SplittableRandom rng = new SplittableRandom(5);

    private JavaOps java;
    private OpenClStepOps cl;
    private float[] params, grads, m1, m2, jParams, jGrads, jM1, jM2;
    private Region[] rj, rc;

    @BeforeEach
    void setUp() {
        java = new JavaOps(cfg);
        cl = new OpenClStepOps(cfg, OpenClDevices.select(DeviceSpec.parse(TestDevice.spec())), batch, seqLen, 0);
        long[] sizes = new long[12];
        Arrays.fill(sizes, SLOT);
        rj = java.allocate(sizes, new boolean[sizes.length]);
        rc = cl.allocate(sizes, new boolean[sizes.length]);
        params = TestData.params(layout, 3);
        grads = random(layout.arraySize(), 0.1);
        m1 = random(layout.arraySize(), 0.01);
        m2 = random(layout.arraySize(), 0.01);
        for (int i = 0; i < m2.length; i++) {
            m2[i] = Math.abs(m2[i]);
        }
        jParams = params.clone();
        jGrads = grads.clone();
        java.bind(jParams, jGrads);
        jM1 = m1.clone();
        jM2 = m2.clone();
        java.bindMoments(jM1, jM2);
        set(Buffer.PARAMS, params);
        set(Buffer.GRADS, grads);
        set(Buffer.MOM1, m1);
        set(Buffer.MOM2, m2);
        cl.parametersChanged();
        int[] tokens = TestData.tokens(n, v, 7), targets = TestData.targets(n, v, 8);
        targets[5] = -1;
        targets[17] = -1;
        java.setBatch(tokens, targets);
        cl.setBatch(tokens, targets);
    }

    @AfterEach
    void tearDown() {
        cl.close();
    }

    /** With {@code reduction} the backward runs per (column, distinct token) over the token index (reduce.cl). */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void embedding(boolean reduction) {
        cl.device().useReduction(reduction);
        cl.device().startProfile();
        run(o -> o.embedForward(r(o, 0), layout.embed(), n, d));
        same("embedding forward", 0, n * d);
        input(1, n * d, 1);
        run(o -> o.embedBackward(layout.embed(), r(o, 1), n, d));
        sameGrads("embedding backward");
        assertEquals(reduction, cl.device().profile().containsKey(DeviceOp.CL_EMBED_BWD.profileName()),
                "the backward over the token index ran where asked");
        assertEquals(!reduction, cl.device().profile().containsKey(DeviceOp.EMBED_BWD.profileName()),
                "the translated backward otherwise");
    }

    /** With {@code reduction} the weight gradient runs in blocks of rows (reduce.cl, the GPU default). */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void rmsNorm(boolean reduction) {
        cl.device().useReduction(reduction);
        cl.device().startProfile();
        TensorView w = layout.layer(1)[ParamLayout.POST_NORM];
        input(2, n * d, 1.5);
        run(o -> o.rmsnormForward(r(o, 0), r(o, 1), r(o, 2), w, n, d, 1e-6f));
        same("rmsnorm y", 0, n * d);
        same("rmsnorm rstd", 1, n);
        input(3, n * d, 1);
        input(4, n * d, 1);
        run(o -> o.rmsnormBackward(r(o, 3), r(o, 4), r(o, 2), r(o, 1), w, n, d));
        same("rmsnorm dx", 3, n * d);
        sameGrads("rmsnorm dw");
        assertEquals(reduction, cl.device().profile().containsKey(DeviceOp.CL_RMSNORM_DW_PARTIAL.profileName()),
                "the weight gradient's partial sums ran where asked");
        assertEquals(!reduction, cl.device().profile().containsKey(DeviceOp.RMSNORM_BWD_DW.profileName()),
                "the translated weight gradient otherwise");
    }

    @Test
    void linear() {
        TensorView gate = layout.layer(0)[ParamLayout.GATE], down = layout.layer(1)[ParamLayout.DOWN];
        input(2, n * d, 1);
        run(o -> o.linearForward(r(o, 0), r(o, 2), gate, n, d, f));
        same("linear forward", 0, n * f);
        input(3, n * d, 1);
        input(4, n * f, 1);
        run(o -> o.linearBackwardInput(r(o, 3), r(o, 4), gate, n, d, f));
        same("linear backward input", 3, n * d);
        input(5, n * f, 1);
        input(6, n * d, 1);
        run(o -> o.linearBackwardWeight(down, r(o, 6), r(o, 5), n, f, d));
        sameGrads("linear backward weight");
    }

    @Test
    void lmHeadProductsOnBlocksOfRows() {
        // the LM head's input gradient takes its own path on CPU devices (the weight transposed once per update)
        TensorView head = layout.lmHead();
        int rows = 11;
        input(2, rows * d, 1);
        run(o -> o.linearForward(r(o, 0), r(o, 2).at(d), head, rows - 1, d, v));
        same("head logits", 0, (rows - 1) * v);
        input(3, rows * d, 1);
        input(4, rows * v, 1);
        run(o -> o.linearBackwardInput(r(o, 3).at(d), r(o, 4), head, rows - 1, d, v));
        same("head backward input", 3, rows * d);
        run(o -> o.linearBackwardWeight(head, r(o, 4), r(o, 2).at(d), rows - 1, d, v));
        sameGrads("head backward weight");
    }

    @Test
    void biasAndGateSum() {
        input(0, n, 1);
        input(1, n, 1);
        run(o -> o.biasAdd(r(o, 0), layout.gateBias(), n));
        same("bias add", 0, n);
        run(o -> o.biasBackward(layout.gateBias(), r(o, 1), n));
        sameGrads("bias backward");
    }

    @Test
    void ropeBothWays() {
        input(2, n * d, 1);
        run(o -> o.rope(r(o, 2), n, seqLen, heads, hd, true));
        same("rope forward", 2, n * d);
        run(o -> o.rope(r(o, 2), n, seqLen, heads, hd, false));
        same("rope backward", 2, n * d);
    }

    @Test
    void attention() {
        input(1, n * d, 1);
        input(2, n * d, 1);
        input(3, n * d, 1);
        run(o -> o.attentionForward(r(o, 0), r(o, 6), r(o, 1), r(o, 2), r(o, 3), batch, seqLen, heads, hd));
        same("attention out", 0, n * d);
        input(4, n * d, 1);
        input(7, n * d, 0.5);
        input(8, n * d, 0.5);
        input(9, n * d, 0.5);
        run(o -> o.attentionBackward(r(o, 7), r(o, 8), r(o, 9), r(o, 4), r(o, 0), r(o, 6), r(o, 1), r(o, 2), r(o, 3),
                batch, seqLen, heads, hd));
        same("attention dq", 7, n * d);
        same("attention dk", 8, n * d);
        same("attention dv", 9, n * d);
    }

    @Test
    void swigluAndElementwise() {
        input(1, n * f, 2);
        input(2, n * f, 1);
        run(o -> o.swigluForward(r(o, 0), r(o, 1), r(o, 2), n * f));
        same("swiglu forward", 0, n * f);
        input(3, n * f, 1);
        input(4, n * f, 1);
        input(5, n * f, 1);
        run(o -> o.swigluBackward(r(o, 3), r(o, 4), r(o, 5), r(o, 1), r(o, 2), n * f));
        same("swiglu dg", 3, n * f);
        same("swiglu du", 4, n * f);
        run(o -> o.add(r(o, 3).at(7), r(o, 5).at(3), 300));
        same("add", 3, n * f);
        run(o -> o.copy(r(o, 4).at(11), r(o, 5).at(1), 301));
        same("copy", 4, n * f);
        run(o -> o.zero(r(o, 5).at(13), 250));
        same("zero", 5, n * f);
    }

    /**
     * The cross-entropy's three kernels, each against Java: the work-group per row (reduce.cl, the GPU default),
     * the item per row (xent.cl, the CPU default), the translated twin.
     */
    @ParameterizedTest
    @ValueSource(strings = {"work-group", "hand", "translated"})
    void crossEntropyOnABlockOfRows(String kernel) {
        boolean hand = kernel.equals("hand");
        cl.device().useReduction(kernel.equals("work-group"));
        cl.device().useHandCrossEntropy(hand);
        cl.device().startProfile();
        int first = 3, rows = 17;
        input(5, rows * v, 3);
        run(o -> o.crossEntropyForward(r(o, 5), r(o, 6).at(first), r(o, 7).at(first), first, rows, v));
        same("cross-entropy lse", 6, first + rows);
        same("cross-entropy ce", 7, first + rows);
        input(8, n, 1);
        run(o -> o.crossEntropyBackward(r(o, 5), r(o, 6).at(first), r(o, 8).at(first), first, rows, v));
        same("cross-entropy backward", 5, rows * v);
        DeviceOp fwd = kernel.equals("work-group") ? DeviceOp.CL_CE_FWD_WG : hand ? DeviceOp.CL_CE_FWD : DeviceOp.CE_FWD;
        DeviceOp bwd = kernel.equals("work-group") ? DeviceOp.CL_CE_BWD_WG : hand ? DeviceOp.CL_CE_BWD : DeviceOp.CE_BWD;
        assertEquals(1, cl.device().profile().get(fwd.profileName())[1], "ran the " + kernel + " forward");
        assertEquals(1, cl.device().profile().get(bwd.profileName())[1], "ran the " + kernel + " backward");
    }

    @Test
    void exitObjectiveBothStages() {
        for (Objective obj : new Objective[]{Objective.stageOne(0.1), Objective.stageTwo()}) {
            input(0, steps * n, 1.5);
            float[] ce = random(steps * n, 1);
            for (int i = 0; i < ce.length; i++) {
                ce[i] = 2 + Math.abs(ce[i]);
            }
            java.write(rj[1], ce);
            cl.write(rc[1], ce);
            double[] a = java.exitObjective(rj[0], rj[1], rj[2], rj[3], rj[4], n, steps, obj, 40);
            double[] b = cl.exitObjective(rc[0], rc[1], rc[2], rc[3], rc[4], n, steps, obj, 40);
            for (int i = 0; i < a.length; i++) {
                assertTrue(Math.abs(a[i] - b[i]) <= TOL * Math.max(1, Math.abs(a[i])),
                        obj.stage() + " sum " + i + ": java " + a[i] + ", opencl " + b[i]);
            }
            same(obj.stage() + " p", 2, steps * n);
            same(obj.stage() + " dz", 3, steps * n);
            if (obj.trainsLm()) {
                same(obj.stage() + " dce", 4, steps * n);
            }
        }
    }

    @Test
    void optimizerOps() {
        double a = java.gradSumSquares(), b = cl.gradSumSquares();
        assertEquals(a, b, 1e-5 * a, "gradient sum of squares");
        run(o -> o.scaleGrads(0.37f));
        run(o -> o.divideGrads(3.7f));
        sameGrads("scale");
        TensorView t = layout.layer(1)[ParamLayout.UP];
        run(o -> o.adamw(t, 0.999f, 0.9f, 0.95f, 1e-2f, 0.3f, 1e-8f));
        cl.device().download(Buffer.PARAMS);
        compare("adamw parameters", javaParams(), cl.device().read(Buffer.PARAMS));
        cl.device().download(Buffer.MOM1);
        cl.device().download(Buffer.MOM2);
        compare("adamw first moment", jM1, cl.device().read(Buffer.MOM1), MOMENT_TOL);
        compare("adamw second moment", jM2, cl.device().read(Buffer.MOM2), MOMENT_TOL);
        run(StepOps::zeroGrads);
        sameGrads("zero");
    }

    // --- harness: the same call on both, the same inputs into both, outputs compared

    private interface Op {
        void on(StepOps o);
    }

    private void run(Op op) {
        op.on(java);
        op.on(cl);
        assertTrue(cl.device().isRunningOpenCl(), "must run as OpenCL");
    }

    private Region r(StepOps o, int i) {
        return o == java ? rj[i] : rc[i];
    }

    private void input(int slot, int count, double scale) {
        float[] x = random(count, scale);
        java.write(rj[slot], x);
        cl.write(rc[slot], x);
    }

    private void same(String what, int slot, int count) {
        compare(what, java.read(rj[slot], count), cl.read(rc[slot], count));
    }

    private void sameGrads(String what) {
        cl.device().download(Buffer.GRADS);
        compare(what, javaGrads(), cl.device().read(Buffer.GRADS));
    }

    private void compare(String what, float[] expected, float[] actual) {
        compare(what, expected, actual, TOL);
    }

    private void compare(String what, float[] expected, float[] actual, double tol) {
        double diff = 0, scale = 0;
        for (int i = 0; i < expected.length; i++) {
            diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
            scale = Math.max(scale, Math.abs(expected[i]));
        }
        String line = String.format(Locale.ROOT, "%s: max |java - opencl| %.2e of %.2e", what, diff, scale);
        System.out.println(line);
        assertTrue(diff <= tol * Math.max(scale, 1e-30), line);
    }

    private float[] javaGrads() {
        return jGrads;
    }

    private float[] javaParams() {
        return jParams;
    }

    private void set(Buffer b, float[] values) {
        System.arraycopy(values, 0, cl.device().host(b), 0, values.length);
        cl.device().upload(b);
    }

    private float[] random(int count, double scale) {
        float[] x = new float[count];
        for (int i = 0; i < count; i++) {
            x[i] = (float) (scale * rng.nextGaussian());
        }
        return x;
    }
}
