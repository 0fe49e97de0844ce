package io.ouro.worker.reference64;

import io.ouro.worker.step64.Region;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each op's backward against float64 central differences of {@code L = sum(r * forward(...))} with a
 * random r, on shapes that are not multiples of the blocking factors.
 */
class OpGradientCheckTest {

    static final double TOLERANCE = 1e-7;
    final SplittableRandom rng = new SplittableRandom(3);

    double[] randn(int n, double scale) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = scale * rng.nextGaussian();
        }
        return a;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    static void assertClose(String what, double[] x, double[] analytic, DoubleSupplier loss) {
        double err = GradientChecker.maxRelativeError(x, 0, x.length, analytic, 0, loss);
        System.out.printf("op gradient check %-34s max relative error %.3e%n", what, err);
        assertTrue(err <= TOLERANCE, what + ": max relative error " + err);
    }

    @Test
    void matmulInputAndWeightGradients() {
        for (int[] s : new int[][]{{5, 7, 6}, {9, 5, 70}, {1, 3, 1}}) {
            int n = s[0], in = s[1], o = s[2];
            double[] x = randn(n * in, 1), w = randn(o * in, 1), r = randn(n * o, 1);
            double[] out = new double[n * o];
            DoubleSupplier loss = () -> {
                Matmul.forward(out, 0, x, 0, w, 0, n, in, o);
                return dot(out, r);
            };
            double[] dx = new double[x.length], dw = new double[w.length];
            Matmul.backwardInput(dx, 0, r, 0, w, 0, n, in, o);
            Matmul.backwardWeight(dw, 0, r, 0, x, 0, n, in, o);
            assertClose("matmul dx " + Arrays.toString(s), x, dx, loss);
            assertClose("matmul dw " + Arrays.toString(s), w, dw, loss);
        }
    }

    @Test
    void rmsNormInputAndWeightGradients() {
        int n = 5, d = 7;
        double[] x = randn(n * d, 1), w = randn(d, 1), r = randn(n * d, 1);
        double[] y = new double[n * d], rstd = new double[n];
        DoubleSupplier loss = () -> {
            RmsNorm.forward(y, rstd, x, w, 0, n, d, 1e-6);
            return dot(y, r);
        };
        loss.getAsDouble();
        double[] dx = new double[x.length], dw = new double[d];
        RmsNorm.backward(dx, dw, 0, r, x, rstd, w, 0, n, d);
        assertClose("rmsnorm dx", x, dx, loss);
        assertClose("rmsnorm dw", w, dw, loss);
    }

    @Test
    void ropeGradient() {
        int batch = 2, seqLen = 5, heads = 3, hd = 6, n = batch * seqLen;
        double[] cos = new double[seqLen * hd / 2], sin = new double[seqLen * hd / 2];
        Rope.tables(cos, sin, seqLen, hd, 100);
        double[] x = randn(n * heads * hd, 1), r = randn(x.length, 1);
        DoubleSupplier loss = () -> {
            double[] y = x.clone();
            Rope.forward(y, cos, sin, n, seqLen, heads, hd);
            return dot(y, r);
        };
        double[] dx = r.clone();
        Rope.backward(dx, cos, sin, n, seqLen, heads, hd);
        assertClose("rope dx", x, dx, loss);
    }

    @Test
    void causalAttentionGradients() {
        int batch = 2, seqLen = 5, heads = 3, hd = 4, n = batch * seqLen, d = heads * hd;
        double[] q = randn(n * d, 1), k = randn(n * d, 1), v = randn(n * d, 1), r = randn(n * d, 1);
        double[] out = new double[n * d], probs = new double[batch * heads * seqLen * seqLen];
        DoubleSupplier loss = () -> {
            CausalAttention.forward(out, probs, q, k, v, batch, seqLen, heads, hd);
            return dot(out, r);
        };
        loss.getAsDouble();
        double[] dq = new double[n * d], dk = new double[n * d], dv = new double[n * d];
        CausalAttention.backward(dq, dk, dv, r, probs, q, k, v, batch, seqLen, heads, hd);
        assertClose("attention dq", q, dq, loss);
        assertClose("attention dk", k, dk, loss);
        assertClose("attention dv", v, dv, loss);
    }

    @Test
    void swiGluGradients() {
        int count = 23;
        double[] g = randn(count, 2), u = randn(count, 1), r = randn(count, 1), m = new double[count];
        DoubleSupplier loss = () -> {
            SwiGlu.forward(m, g, u, count);
            return dot(m, r);
        };
        double[] dg = new double[count], du = new double[count];
        SwiGlu.backward(dg, du, r, g, u, count);
        assertClose("swiglu dg", g, dg, loss);
        assertClose("swiglu du", u, du, loss);
    }

    @Test
    void embeddingGradient() {
        int vocab = 5, d = 3, n = 7;
        int[] tokens = {0, 3, 3, 1, 4, 3, 0};
        double[] table = randn(vocab * d, 1), r = randn(n * d, 1), out = new double[n * d];
        DoubleSupplier loss = () -> {
            Embedding.forward(out, table, 0, tokens, n, d);
            return dot(out, r);
        };
        double[] dt = new double[table.length];
        Embedding.backward(dt, 0, r, tokens, n, d);
        assertClose("embedding dtable", table, dt, loss);
    }

    @Test
    void lmHeadCrossEntropyGradientsAcrossRowBlocks() {
        // the LM head and cross-entropy as the schedule runs them: linear + cross-entropy a block of rows at a time
        int n = 7, block = 3;
        io.ouro.worker.model.LoopConfig cfg = new io.ouro.worker.model.LoopConfig(11, 4, 1, 2, 6, 1, 10_000, 1e-6,
                0.1, 0.2, 1);
        int d = cfg.hidden(), vocab = cfg.vocab();
        io.ouro.worker.model.ParamLayout layout = new io.ouro.worker.model.ParamLayout(cfg);
        io.ouro.worker.model.TensorView head = layout.lmHead();
        int[] targets = {1, 10, -1, 0, 5, 5, 7};
        JavaOps ops = new JavaOps(cfg);
        double[] w = randn(layout.arraySize(), 1), dw = new double[w.length];
        ops.bind(w, dw);
        ops.setBatch(new int[n], targets);
        Region[] r = ops.allocate(new long[]{(long) n * d, (long) block * vocab, n, n, n, (long) n * d}, new boolean[6]);
        Region hR = r[0], scratch = r[1], lse = r[2], ce = r[3], dce = r[4], dhR = r[5];
        double[] h = ops.array(hR);
        System.arraycopy(randn(n * d, 1), 0, h, 0, n * d);
        double[] weights = randn(n, 1);
        System.arraycopy(weights, 0, ops.array(dce), 0, n);
        DoubleSupplier loss = () -> {
            for (int r0 = 0; r0 < n; r0 += block) {
                int rows = Math.min(block, n - r0);
                ops.linearForward(scratch, hR.at(r0 * d), head, rows, d, vocab);
                ops.crossEntropyForward(scratch, lse.at(r0), ce.at(r0), r0, rows, vocab);
            }
            return dot(ops.array(ce), weights);
        };
        loss.getAsDouble();
        for (int r0 = 0; r0 < n; r0 += block) {
            int rows = Math.min(block, n - r0);
            ops.linearForward(scratch, hR.at(r0 * d), head, rows, d, vocab);
            ops.crossEntropyBackward(scratch, lse.at(r0), dce.at(r0), r0, rows, vocab);
            ops.linearBackwardInput(dhR.at(r0 * d), scratch, head, rows, d, vocab);
            ops.linearBackwardWeight(head, scratch, hR.at(r0 * d), rows, d, vocab);
        }
        assertClose("lm head dh", h, ops.array(dhR), loss);
        assertClose("lm head dw", w, dw, loss);
    }

    @Test
    void stageOneObjectiveGradients() {
        int steps = 4, n = 6, tokens = 5;
        int[] targets = {1, 2, -1, 3, 4, 0};
        double[] z = randn(steps * n, 1.5), ce = randn(steps * n, 1);
        for (int i = 0; i < ce.length; i++) {
            ce[i] = 2 + Math.abs(ce[i]);
        }
        double[] dz = new double[z.length], dce = new double[ce.length];
        DoubleSupplier loss = () -> ExitObjective.stageOne(new double[z.length], new double[ce.length], z, ce,
                targets, steps, n, tokens, 0.1);
        ExitObjective.stageOne(dz, dce, z, ce, targets, steps, n, tokens, 0.1);
        assertClose("stage I dz", z, dz, loss);
        assertClose("stage I dce", ce, dce, loss);
    }

    @Test
    void stageTwoObjectiveGradient() {
        int steps = 4, n = 6, tokens = 5;
        int[] targets = {1, 2, -1, 3, 4, 0};
        double[] z = randn(steps * n, 1.5), ce = randn(steps * n, 0.01);
        double[] dz = new double[z.length];
        DoubleSupplier loss = () -> ExitObjective.stageTwo(new double[z.length], z, ce, targets, steps, n, tokens,
                50, 0.005);
        ExitObjective.stageTwo(dz, z, ce, targets, steps, n, tokens, 50, 0.005);
        assertClose("stage II dz", z, dz, loss);
    }
}
