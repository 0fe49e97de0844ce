package io.ouro.worker.reference;

import io.ouro.worker.GradientComparison;
import io.ouro.worker.TestData;
import io.ouro.worker.model.AdamW;
import io.ouro.worker.model.DecayPolicy;
import io.ouro.worker.model.GradClip;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.torch.TorchLoopLM;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java reference backend against an independent PyTorch implementation of the same model (through
 * DJL, CPU, float32) loaded with the same weights: per-step logits, the loss and its parts, every
 * gradient tensor, and five clipped AdamW steps.
 */
class TorchParityTest {

    static final double LOGITS_ABS = 1e-4, LOSS_REL = 1e-5, GRAD_REL = 1e-3, TRAJECTORY = 1e-4;
    static final List<String> SUMMARY = new ArrayList<>();

    static Stream<Arguments> cases() {
        // vocab, hidden, layers, heads, ffn, steps, batch, seqLen
        int[][] shapes = {
                {61, 32, 2, 4, 48, 4, 2, 13},
                {97, 24, 3, 2, 40, 3, 3, 7},
        };
        List<Arguments> args = new ArrayList<>();
        for (int[] s : shapes) {
            args.add(Arguments.of(s, Objective.stageOne(0.1)));
            args.add(Arguments.of(s, Objective.stageTwo()));
        }
        return args.stream();
    }

    @BeforeAll
    static void clear() {
        SUMMARY.clear();
    }

    @AfterAll
    static void summary() {
        SUMMARY.forEach(System.out::println);
    }

    @ParameterizedTest(name = "{1} on V,d,L,H,F,T,B,S = {0}")
    @MethodSource("cases")
    void javaReferenceMatchesPyTorch(int[] s, Objective obj) {
        LoopConfig cfg = new LoopConfig(s[0], s[1], s[2], s[3], s[4], s[5], 10_000, 1e-6, obj.beta(), 0.1, 21);
        int batch = s[6], seqLen = s[7], n = batch * seqLen;
        ReferenceModel java = new ReferenceModel(cfg);
        ParamLayout layout = java.layout();
        float[] params = TestData.params(layout, 8);
        int[] tokens = TestData.tokens(n, cfg.vocab(), 31);
        int[] targets = TestData.targets(n, cfg.vocab(), 32);
        DecayPolicy decay = DecayPolicy.defaults();

        try (TorchLoopLM torch = new TorchLoopLM(layout)) {
            torch.load(params);

            // one step, compared in detail
            StepReport ours = java.forward(params, tokens, targets, batch, seqLen, obj, true);
            TorchLoopLM.Result ref = torch.forwardBackward(tokens, targets, batch, seqLen, obj, true, true);
            double logitsErr = 0;
            for (int t = 0; t < cfg.steps(); t++) {
                float[] a = java.logits(t), b = ref.logits()[t];
                for (int i = 0; i < a.length; i++) {
                    logitsErr = Math.max(logitsErr, Math.abs(a[i] - b[i]));
                }
            }
            double lossErr = rel(ours.loss(), ref.loss());
            double partsErr = 0;
            for (int t = 0; t < cfg.steps(); t++) {
                partsErr = Math.max(partsErr, rel(ours.stepCe()[t], ref.stepCe()[t]));
                partsErr = Math.max(partsErr, Math.abs(ours.meanExit()[t] - ref.meanExit()[t]));
            }
            float[] grads = new float[params.length];
            java.backward(params, grads);
            GradientComparison gc = GradientComparison.of(layout, grads, ref.grads());
            double gradErr = gc.worst();
            String worstTensor = gc.tensor();

            // five clipped AdamW steps on both sides from the same start
            AdamW opt = AdamW.ouro(layout);
            float[] p = params.clone();
            double trajectoryErr = 0;
            StringBuilder losses = new StringBuilder();
            for (int step = 0; step < 5; step++) {
                double a = java.forward(p, tokens, targets, batch, seqLen, obj, false).loss();
                float[] g = new float[p.length];
                java.backward(p, g);
                GradClip.clip(g, 1.0);
                opt.step(p, g, 1e-2, obj.trainsLm() ? t -> true : layout::isGate);
                double b = torch.forwardBackward(tokens, targets, batch, seqLen, obj, true, false).loss();
                torch.clipAndStep(1e-2, 0.1, 0.9, 0.95, 1e-8, 1.0, obj, decay::decays);
                trajectoryErr = Math.max(trajectoryErr, Math.abs(a - b) / Math.max(1, Math.abs(b)));
                losses.append(String.format(Locale.ROOT, " %.5f/%.5f", a, b));
            }

            String line = String.format(Locale.ROOT,
                    "torch parity %s %s: logits %.2e abs, loss %.2e rel, CE/exit %.2e, gradients %.2e rel (worst %s),"
                            + " 5 AdamW steps %.2e; losses java/torch%s",
                    obj.stage(), Arrays.toString(s), logitsErr, lossErr, partsErr, gradErr, worstTensor,
                    trajectoryErr, losses);
            SUMMARY.add(line);
            assertTrue(logitsErr <= LOGITS_ABS, line);
            assertTrue(lossErr <= LOSS_REL, line);
            assertTrue(partsErr <= LOSS_REL, line);
            assertTrue(gradErr <= GRAD_REL, line);
            assertTrue(trajectoryErr <= TRAJECTORY, line);
        }
    }

    static double rel(double a, double b) {
        return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
    }
}
