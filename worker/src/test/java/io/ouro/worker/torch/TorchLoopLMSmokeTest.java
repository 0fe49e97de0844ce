package io.ouro.worker.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorKind;
import io.ouro.worker.model.TensorView;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Random;

/**
 * Self-checks of the PyTorch reference that need no other implementation: identities of the
 * objective, float32 finite differences against autograd, Stage II freezing, causality, and the
 * optimizer's bookkeeping.
 */
class TorchLoopLMSmokeTest {

    private static final LoopConfig CFG = new LoopConfig(13, 8, 2, 2, 12, 3, 10000, 1e-6, 0.1, 0.2, 7);
    private static final int B = 2, S = 5, N = B * S;

    private static ParamLayout layout;
    private static TorchLoopLM model;
    private static float[] params;
    private static int[] tokens;
    private static int[] targets;

    @BeforeAll
    static void setUp() {
        layout = new ParamLayout(CFG);
        model = new TorchLoopLM(layout);
        params = randomParams(layout, new Random(11));
        Random r = new Random(5);
        tokens = new int[N];
        targets = new int[N];
        for (int i = 0; i < N; i++) {
            tokens[i] = r.nextInt(CFG.vocab());
            targets[i] = r.nextInt(CFG.vocab());
        }
        targets[3] = -1;
    }

    @AfterAll
    static void tearDown() {
        model.close();
    }

    static float[] randomParams(ParamLayout l, Random r) {
        float[] p = new float[l.arraySize()];
        for (TensorView v : l.tensors()) {
            for (int i = 0; i < v.len(); i++) {
                double g = r.nextGaussian();
                p[v.off() + i] = (float) (v.kind() == TensorKind.NORM ? 1 + 0.1 * g : 0.2 * g);
            }
        }
        return p;
    }

    private static TorchLoopLM.Result run(TorchLoopLM m, LoopConfig cfg, float[] p, Objective obj, boolean backward) {
        m.load(p);
        return m.forwardBackward(tokens, targets, B, S, obj, backward, false);
    }

    @Test
    void singleStepWithoutEntropyIsPlainCrossEntropy() {
        LoopConfig one = CFG.withSteps(1);
        ParamLayout l1 = new ParamLayout(one);
        try (TorchLoopLM m = new TorchLoopLM(l1)) {
            m.load(randomParams(l1, new Random(3)));
            TorchLoopLM.Result r = m.forwardBackward(tokens, targets, B, S, Objective.stageOne(0), true, true);
            assertEquals(r.stepCe()[0], r.loss(), 1e-5 * Math.abs(r.loss()));
            assertEquals(1.0, r.meanExit()[0], 1e-7);
            // CE recomputed in double from the returned logits.
            double ce = 0;
            int count = 0;
            for (int n = 0; n < N; n++) {
                if (targets[n] < 0) {
                    continue;
                }
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < one.vocab(); v++) {
                    max = Math.max(max, r.logits()[0][n * one.vocab() + v]);
                }
                double sum = 0;
                for (int v = 0; v < one.vocab(); v++) {
                    sum += Math.exp(r.logits()[0][n * one.vocab() + v] - max);
                }
                ce += max + Math.log(sum) - r.logits()[0][n * one.vocab() + targets[n]];
                count++;
            }
            assertEquals(ce / count, r.loss(), 1e-5 * Math.abs(r.loss()));
            // The gate is unused when T = 1.
            float[] g = r.grads();
            assertEquals(0f, g[l1.gateBias().off()]);
        }
    }

    @Test
    void exitDistributionSumsToOne() {
        TorchLoopLM.Result r = run(model, CFG, params, Objective.stageOne(CFG.beta()), false);
        double sum = 0;
        for (double p : r.meanExit()) {
            assertTrue(p > 0 && p < 1, "meanExit " + p);
            sum += p;
        }
        assertEquals(1.0, sum, 1e-5);
        assertEquals(CFG.steps(), r.stepCe().length);
        // The loss lies within the range spanned by the per-step losses, shifted by at most beta log T.
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (double c : r.stepCe()) {
            lo = Math.min(lo, c);
            hi = Math.max(hi, c);
        }
        assertTrue(r.loss() >= lo - CFG.beta() * Math.log(CFG.steps()) - 1e-5 && r.loss() <= hi + 1e-5,
                "loss " + r.loss() + " outside [" + lo + ", " + hi + "]");
    }

    @Test
    void stageOneGradientsMatchFiniteDifferences() {
        Objective obj = Objective.stageOne(CFG.beta());
        TorchLoopLM.Result r = run(model, CFG, params, obj, true);
        float[] g = r.grads();
        TensorView[] l0 = layout.layer(0);
        TensorView[] l1 = layout.layer(1);
        TensorView[] checked = {layout.gateBias(), layout.gateWeight(), layout.lmHead(), layout.embed(),
            layout.finalNorm(), l0[ParamLayout.Q], l1[ParamLayout.K], l0[ParamLayout.DOWN], l1[ParamLayout.POST_NORM_2]};
        for (TensorView v : checked) {
            int idx = argMaxAbs(g, v);
            double fd = richardson(obj, idx);
            double an = g[idx];
            assertTrue(Math.abs(an) > 1e-4, v.name() + ": gradient too small to check, " + an);
            assertEquals(an, fd, 1e-2 * Math.abs(an) + 2e-4, v.name() + "[" + (idx - v.off()) + "]");
        }
        // Gradients are fresh on every call, not accumulated.
        TorchLoopLM.Result again = run(model, CFG, params, obj, true);
        assertArrayEquals(g, again.grads());
        assertEquals(r.loss(), again.loss());
    }

    @Test
    void stageTwoTrainsOnlyTheGate() {
        Objective obj = Objective.stageTwo(5, 0.005);
        TorchLoopLM.Result r = run(model, CFG, params, obj, true);
        float[] g = r.grads();
        boolean gateNonZero = false;
        for (TensorView v : layout.tensors()) {
            for (int i = v.off(); i < v.off() + v.len(); i++) {
                if (layout.isGate(v)) {
                    gateNonZero |= g[i] != 0;
                } else {
                    assertEquals(0f, g[i], v.name());
                }
            }
        }
        assertTrue(gateNonZero);
        int idx = layout.gateBias().off();
        double fd = richardson(obj, idx);
        assertEquals(g[idx], fd, 1e-2 * Math.abs(g[idx]) + 2e-4, "stage II gate bias");
        int w = argMaxAbs(g, layout.gateWeight());
        assertEquals(g[w], richardson(obj, w), 1e-2 * Math.abs(g[w]) + 2e-4, "stage II gate weight");
    }

    @Test
    void attentionIsCausal() {
        model.load(params);
        TorchLoopLM.Result a = model.forwardBackward(tokens, targets, B, S, Objective.stageOne(0.1), false, true);
        int[] changed = tokens.clone();
        changed[S - 1] = (changed[S - 1] + 1) % CFG.vocab();   // last position of sequence 0
        TorchLoopLM.Result b = model.forwardBackward(changed, targets, B, S, Objective.stageOne(0.1), false, true);
        int vocab = CFG.vocab();
        for (int t = 0; t < CFG.steps(); t++) {
            for (int n = 0; n < N; n++) {
                for (int v = 0; v < vocab; v++) {
                    float x = a.logits()[t][n * vocab + v];
                    float y = b.logits()[t][n * vocab + v];
                    if (n == S - 1) {
                        continue;
                    }
                    assertEquals(x, y, "step " + t + " position " + n + " must not see a later token");
                }
            }
            boolean moved = false;
            for (int v = 0; v < vocab; v++) {
                moved |= a.logits()[t][(S - 1) * vocab + v] != b.logits()[t][(S - 1) * vocab + v];
            }
            assertTrue(moved);
        }
    }

    @Test
    void clipAndStepMovesDownhill() {
        ParamLayout l = layout;
        try (TorchLoopLM m = new TorchLoopLM(l)) {
            Objective obj = Objective.stageOne(CFG.beta());
            m.load(params);
            TorchLoopLM.Result r0 = m.forwardBackward(tokens, targets, B, S, obj, true, false);
            double sq = 0;
            for (float x : r0.grads()) {
                sq += (double) x * x;
            }
            double norm = m.clipAndStep(1e-2, 0.1, 0.9, 0.95, 1e-8, 0.5, obj, v -> v.kind() == TensorKind.LINEAR);
            assertEquals(Math.sqrt(sq), norm, 1e-5 * norm);
            float[] p1 = m.exportParams();
            // First AdamW step: each trainable entry moves by about lr (|m / sqrt(v)| = 1 after bias correction).
            int moved = 0;
            for (int i = 0; i < p1.length; i++) {
                double step = Math.abs(p1[i] - params[i]);
                double bound = 1e-2 * (1 + 1e-5) + 1e-3 * Math.abs(params[i]);   // lr + lr*wd*|p|
                assertTrue(step <= bound, "entry " + i + " moved " + step);
                if (r0.grads()[i] != 0) {
                    moved++;
                }
            }
            assertTrue(moved > p1.length / 2);
            TorchLoopLM.Result r1 = m.forwardBackward(tokens, targets, B, S, obj, false, false);
            assertTrue(r1.loss() < r0.loss(), r1.loss() + " !< " + r0.loss());

            // Stage II steps only the gate.
            Objective two = Objective.stageTwo();
            m.forwardBackward(tokens, targets, B, S, two, true, false);
            m.clipAndStep(1e-2, 0.1, 0.9, 0.95, 1e-8, 1.0, two, v -> v.kind() == TensorKind.LINEAR);
            float[] p2 = m.exportParams();
            for (TensorView v : l.tensors()) {
                for (int i = v.off(); i < v.off() + v.len(); i++) {
                    if (!l.isGate(v)) {
                        assertEquals(p1[i], p2[i], v.name());
                    }
                }
            }
            assertNotEquals(p1[l.gateBias().off()], p2[l.gateBias().off()]);
        }
    }

    @Test
    void stepsDoNotLeakArrays() {
        try (TorchLoopLM m = new TorchLoopLM(layout)) {
            m.load(params);
            Objective obj = Objective.stageOne(CFG.beta());
            m.forwardBackward(tokens, targets, B, S, obj, true, true);
            m.clipAndStep(1e-3, 0.1, 0.9, 0.95, 1e-8, 1.0, obj, v -> true);
            int live = m.liveArrays();
            assertEquals(3 * layout.tensors().size(), live, "parameters and two moments per tensor");
            for (int i = 0; i < 3; i++) {
                m.forwardBackward(tokens, targets, B, S, obj, true, true);
                m.clipAndStep(1e-3, 0.1, 0.9, 0.95, 1e-8, 1.0, obj, v -> true);
                m.forwardBackward(tokens, targets, B, S, Objective.stageTwo(), true, false);
                m.clipAndStep(1e-3, 0.1, 0.9, 0.95, 1e-8, 1.0, Objective.stageTwo(), v -> true);
                m.load(m.exportParams());
            }
            assertEquals(live, m.liveArrays());
        }
    }

    /** Two clipped AdamW steps against the torch.optim.AdamW + clip_grad_norm_ formulas recomputed in double. */
    @Test
    void clipAndStepFollowsAdamW() {
        double lr = 1e-2, wd = 0.1, b1 = 0.9, b2 = 0.95, eps = 1e-8, maxNorm = 0.3;
        java.util.function.Predicate<TensorView> decays = v -> v.kind() == TensorKind.LINEAR;
        try (TorchLoopLM m = new TorchLoopLM(layout)) {
            Objective obj = Objective.stageOne(CFG.beta());
            m.load(params);
            int n = params.length;
            double[] mom = new double[n], vel = new double[n];
            float[] p = params.clone();
            for (int step = 1; step <= 2; step++) {
                float[] g = m.forwardBackward(tokens, targets, B, S, obj, true, false).grads();
                double sq = 0;
                for (float x : g) {
                    sq += (double) x * x;
                }
                double total = Math.sqrt(sq);
                double coef = Math.min(1, maxNorm / (total + 1e-6));
                assertTrue(coef < 1, "the check should exercise clipping");
                double norm = m.clipAndStep(lr, wd, b1, b2, eps, maxNorm, obj, decays);
                assertEquals(total, norm, 1e-5 * total);
                float[] got = m.exportParams();
                double bc1 = 1 - Math.pow(b1, step), bc2 = 1 - Math.pow(b2, step);
                for (TensorView v : layout.tensors()) {
                    for (int i = v.off(); i < v.off() + v.len(); i++) {
                        double gi = g[i] * coef;
                        double pi = decays.test(v) ? p[i] * (1 - lr * wd) : p[i];
                        mom[i] = b1 * mom[i] + (1 - b1) * gi;
                        vel[i] = b2 * vel[i] + (1 - b2) * gi * gi;
                        double want = pi - (lr / bc1) * mom[i] / (Math.sqrt(vel[i]) / Math.sqrt(bc2) + eps);
                        assertEquals(want, got[i], 2e-6 + 1e-6 * Math.abs(want), v.name() + " step " + step);
                    }
                }
                p = got;
            }
        }
    }

    /**
     * Guards against a DJL use-after-free: arrays that autograd saves for the backward must not sit on
     * Java buffers that the garbage collector may free before the backward runs.
     */
    @Test
    void gradientsSurviveGarbageCollection() throws InterruptedException {
        Objective obj = Objective.stageOne(CFG.beta());
        float[] expected = run(model, CFG, params, obj, true).grads();
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread gc = new Thread(() -> {
            while (!stop.get()) {
                System.gc();
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        gc.setDaemon(true);
        gc.start();
        try {
            for (int i = 0; i < 5; i++) {
                assertArrayEquals(expected, run(model, CFG, params, obj, true).grads(), "run " + i);
            }
        } finally {
            stop.set(true);
            gc.join();
        }
    }

    private static int argMaxAbs(float[] g, TensorView v) {
        int best = v.off();
        for (int i = v.off(); i < v.off() + v.len(); i++) {
            if (Math.abs(g[i]) > Math.abs(g[best])) {
                best = i;
            }
        }
        return best;
    }

    /** Central differences at h and h/2 combined to cancel the O(h^2) error: float32 losses allow no smaller h. */
    private static double richardson(Objective obj, int idx) {
        double d1 = centralDifference(obj, idx, 1e-2f);
        double d2 = centralDifference(obj, idx, 5e-3f);
        return (4 * d2 - d1) / 3;
    }

    private static double centralDifference(Objective obj, int idx, float h) {
        float[] p = params.clone();
        p[idx] = params[idx] + h;
        double up = run(model, CFG, p, obj, false).loss();
        p[idx] = params[idx] - h;
        double down = run(model, CFG, p, obj, false).loss();
        double actualH = ((double) (params[idx] + h) - (double) (params[idx] - h)) / 2;
        return (up - down) / (2 * actualH);
    }
}
