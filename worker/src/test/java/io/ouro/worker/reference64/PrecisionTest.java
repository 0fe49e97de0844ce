package io.ouro.worker.reference64;

import io.ouro.worker.TestData;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.StepReport;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The float32 backend agrees with its float64 twin to float32 accuracy. */
class PrecisionTest {

    @Test
    void float32AndFloat64AgreeOnLossAndGradients() {
        LoopConfig cfg = new LoopConfig(37, 24, 2, 3, 40, 3, 10_000, 1e-6, 0.1, 0.1, 5);
        int batch = 2, seqLen = 9;
        io.ouro.worker.reference.ReferenceModel f32 = new io.ouro.worker.reference.ReferenceModel(cfg);
        ReferenceModel f64 = new ReferenceModel(cfg);
        float[] p32 = TestData.params(f32.layout(), 2);
        double[] p64 = TestData.widen(p32);
        int[] tokens = TestData.tokens(batch * seqLen, cfg.vocab(), 3);
        int[] targets = TestData.targets(batch * seqLen, cfg.vocab(), 4);
        for (Objective obj : new Objective[]{Objective.stageOne(0.1), Objective.stageTwo()}) {
            StepReport a = f32.forward(p32, tokens, targets, batch, seqLen, obj, false);
            StepReport b = f64.forward(p64, tokens, targets, batch, seqLen, obj, false);
            assertEquals(b.loss(), a.loss(), 1e-5 * Math.abs(b.loss()));
            float[] g32 = new float[p32.length];
            double[] g64 = new double[p64.length];
            f32.backward(p32, g32);
            f64.backward(p64, g64);
            double maxDiff = 0, maxRef = 0;
            for (int i = 0; i < g32.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(g32[i] - g64[i]));
                maxRef = Math.max(maxRef, Math.abs(g64[i]));
            }
            System.out.printf("float32 vs float64 %s: loss %.3e rel, gradients %.3e rel (max-norm)%n", obj.stage(),
                    Math.abs(a.loss() - b.loss()) / Math.abs(b.loss()), maxDiff / maxRef);
            assertTrue(maxDiff <= 1e-4 * maxRef, "gradient difference " + maxDiff + " vs scale " + maxRef);
        }
    }
}
