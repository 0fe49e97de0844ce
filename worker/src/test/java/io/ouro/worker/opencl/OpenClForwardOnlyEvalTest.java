package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.TestData;
import io.ouro.worker.TestDevice;
import io.ouro.worker.backend.EvalForward;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepShape;
import org.junit.jupiter.api.Test;

import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Evaluation's forward-only model ({@link EvalForward}) on an OpenCL device: the per-row CE and exit lambdas of every
 * step equal the Java backend's, including a last batch smaller than the workspace; the device holds no gradient and
 * no Adam moments (3 parameter-sized buffers fewer than a training model of the same shape), and an op that needs
 * them is an error.
 */
class OpenClForwardOnlyEvalTest {

    @Test
    void forwardOnlyOpenClEvaluationEqualsJavaWithoutGradientOrOptimizerMemory() {
        LoopConfig cfg = new LoopConfig(61, 24, 2, 3, 40, 3, 10_000, 1e-6, 0.1, 0.1, 21);
        ParamLayout layout = new ParamLayout(cfg);
        float[] params = TestData.params(layout, 8);
        int batch = 3, seqLen = 13;
        String device = TestDevice.spec();
        try (EvalForward java = new EvalForward("java", cfg, params, batch, seqLen);
             EvalForward cl = new EvalForward(device, cfg, params, batch, seqLen)) {
            for (int bs : new int[] {batch, 2}) {
                int n = bs * seqLen;
                int[] tokens = TestData.tokens(n, cfg.vocab(), 31 + bs), targets = TestData.targets(n, cfg.vocab(), 32);
                EvalForward.Output a = java.forward(tokens, targets, bs), b = cl.forward(tokens, targets, bs);
                assertEquals(cfg.steps() * n, b.ce().length);
                double ce = 0, lam = 0;
                for (int i = 0; i < a.ce().length; i++) {
                    ce = Math.max(ce, Math.abs(a.ce()[i] - b.ce()[i]));
                    lam = Math.max(lam, Math.abs(a.lambda()[i] - b.lambda()[i]));
                }
                System.out.printf(Locale.ROOT, "OpenClForwardOnlyEvalTest: %d sequences, max |CE difference| %.2e, max"
                        + " |lambda difference| %.2e%n", bs, ce, lam);
                assertTrue(ce <= 1e-5, "CE differs by " + ce);
                assertTrue(lam <= 1e-6, "lambda differs by " + lam);
            }
            try (OpenClModel train = new OpenClModel(cfg, OpenClDevices.select(DeviceSpec.parse(device)),
                    StepShape.whole(batch, seqLen), false)) {
                long saved = train.ops().deviceBytes() - cl.deviceBytes();
                System.out.printf(Locale.ROOT, "OpenClForwardOnlyEvalTest: device bytes %,d forward only, %,d training%n",
                        cl.deviceBytes(), train.ops().deviceBytes());
                // and the logits a training model keeps for its backward without recomputation (StepWorkspace.storesLogits)
                long logits = 4L * cfg.steps() * batch * seqLen * cfg.vocab();
                // and the token index of the embedding backward, after the ids (TokenIndex)
                long index = 4L * TokenIndex.ints(batch * seqLen);
                assertEquals(3L * 4 * (layout.arraySize() - 1) + logits + index, saved,
                        "gradient, first and second moment buffers, the kept logits and the token index");
            }
        }
        try (OpenClModel fwd = new OpenClModel(cfg, OpenClDevices.select(DeviceSpec.parse(device)),
                StepShape.whole(batch, seqLen), false, false)) {
            fwd.setParameters(params);
            int n = batch * seqLen;
            fwd.forward(TestData.tokens(n, cfg.vocab(), 1), TestData.targets(n, cfg.vocab(), 2), Objective.stageOne(0.1));
            IllegalStateException e = assertThrows(IllegalStateException.class, fwd::backward);
            assertTrue(e.getMessage().contains("forward-only"), e.getMessage());
            assertThrows(IllegalStateException.class, fwd::optimizerState);
        }
    }
}
