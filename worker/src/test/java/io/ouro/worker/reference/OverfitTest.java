package io.ouro.worker.reference;

import io.ouro.worker.TestData;
import io.ouro.worker.model.AdamW;
import io.ouro.worker.model.GradClip;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.StepReport;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The model, the objective, backward and AdamW together can memorise one small batch. */
class OverfitTest {

    @Test
    void oneBatchIsMemorisedAndLaterLoopStepsReachLowerCrossEntropy() {
        LoopConfig cfg = new LoopConfig(32, 32, 2, 4, 64, 3, 10_000, 1e-6, 0.1, 0.05, 3);
        ReferenceModel model = new ReferenceModel(cfg);
        float[] params = TestData.params(model.layout(), 4);
        int batch = 2, seqLen = 16;
        int[] tokens = TestData.tokens(batch * seqLen, cfg.vocab(), 9);
        int[] targets = TestData.targets(batch * seqLen, cfg.vocab(), 10);
        Objective obj = Objective.stageOne(cfg.beta());
        AdamW opt = AdamW.ouro(model.layout());

        StepReport first = null, last = null;
        for (int step = 0; step < 150; step++) {
            last = model.forward(params, tokens, targets, batch, seqLen, obj, false);
            if (first == null) {
                first = last;
            }
            float[] grads = new float[params.length];
            model.backward(params, grads);
            GradClip.clip(grads, 1.0);
            opt.step(params, grads, 1e-2, t -> true);
        }
        last = model.forward(params, tokens, targets, batch, seqLen, obj, false);
        System.out.printf("overfit: loss %.4f -> %.4f, per-step CE %s, exit %s%n", first.loss(), last.loss(),
                Arrays.toString(last.stepCe()), Arrays.toString(last.meanExit()));
        assertTrue(last.loss() < 0.05 * first.loss(), "loss " + first.loss() + " -> " + last.loss());
        double[] ce = last.stepCe();
        // the entropy bonus alone cannot pass this: the cross-entropy itself must collapse
        double startCe = first.stepCe()[cfg.steps() - 1];
        assertTrue(ce[cfg.steps() - 1] < 0.05 * startCe, "last-step CE " + startCe + " -> " + ce[cfg.steps() - 1]);
        assertTrue(ce[cfg.steps() - 1] < ce[0], "last loop step should beat the first: " + Arrays.toString(ce));
    }
}
