package io.ouro.worker.backend;

import io.ouro.worker.TestData;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.opencl.OpenClException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The config's device picks the backend; both backends train identically through the interface. */
class BackendSelectionOpenClTest {

    final LoopConfig cfg = new LoopConfig(29, 16, 1, 2, 24, 2, 10_000, 1e-6, 0.1, 0.1, 4);

    @Test
    void deviceNamesTheBackendAndBothTrainAlike() {
        int batch = 2, seqLen = 9;
        float[] params = TestData.params(new io.ouro.worker.model.ParamLayout(cfg), 3);
        int[] tokens = TestData.tokens(batch * seqLen, cfg.vocab(), 5);
        int[] targets = TestData.targets(batch * seqLen, cfg.vocab(), 6);
        try (TrainingBackend java = Backends.open("java", cfg, AdamWConfig.ouro(), batch, seqLen);
             TrainingBackend cl = Backends.open(io.ouro.worker.TestDevice.spec(), cfg, AdamWConfig.ouro(), batch, seqLen)) {
            assertTrue(java instanceof JavaBackend && java.describe().startsWith("java reference"), java.describe());
            assertTrue(cl instanceof OpenClBackend && cl.describe().startsWith("OpenCL "), cl.describe());
            java.setParameters(params);
            cl.setParameters(params);
            for (int step = 0; step < 3; step++) {
                double[] loss = new double[2];
                int i = 0;
                for (TrainingBackend b : new TrainingBackend[]{java, cl}) {
                    b.zeroGradients();
                    loss[i++] = b.forwardBackward(tokens, targets, Objective.stageOne(0.1)).loss();
                    b.setGradients(b.gradients());
                    b.clipGradients(1.0);
                    b.adamw(1e-2, t -> true);
                }
                assertEquals(loss[0], loss[1], 1e-5 * Math.abs(loss[0]), "step " + step);
            }
            float[] a = java.parameters(), b = cl.parameters();
            for (int i = 0; i < a.length; i++) {
                assertEquals(a[i], b[i], 1e-5, "parameter " + i);
            }
        }
    }

    /**
     * Saving parameters and optimizer state, and restoring them into a fresh backend, continues training
     * bit for bit as if nothing happened: what checkpoint resume relies on. Both backends.
     */
    @Test
    void restoredStateContinuesBitForBit() {
        int batch = 2, seqLen = 9;
        float[] params = TestData.params(new io.ouro.worker.model.ParamLayout(cfg), 8);
        int[] tokens = TestData.tokens(batch * seqLen, cfg.vocab(), 1);
        int[] targets = TestData.targets(batch * seqLen, cfg.vocab(), 2);
        for (String device : new String[]{"java", io.ouro.worker.TestDevice.spec()}) {
            try (TrainingBackend a = Backends.open(device, cfg, AdamWConfig.ouro(), batch, seqLen);
                 TrainingBackend b = Backends.open(device, cfg, AdamWConfig.ouro(), batch, seqLen)) {
                a.setParameters(params);
                for (int s = 0; s < 3; s++) {
                    trainStep(a, tokens, targets);
                }
                b.setParameters(a.parameters());
                b.setOptimizerState(a.optimizerState());
                assertEquals(3, b.optimizerState().step());
                for (int s = 0; s < 2; s++) {
                    trainStep(a, tokens, targets);
                    trainStep(b, tokens, targets);
                }
                org.junit.jupiter.api.Assertions.assertArrayEquals(a.parameters(), b.parameters(), device);
                org.junit.jupiter.api.Assertions.assertArrayEquals(a.optimizerState().v(), b.optimizerState().v(), device);
                b.setParameters(params);
                assertEquals(0, b.optimizerState().step(), "setParameters clears the optimizer state");
            }
        }
    }

    static void trainStep(TrainingBackend b, int[] tokens, int[] targets) {
        b.zeroGradients();
        b.forwardBackward(tokens, targets, Objective.stageOne(0.1));
        b.clipGradients(1.0);
        b.adamw(1e-2, t -> true);
    }

    @Test
    void anAbsentDeviceIsAnErrorNotAFallback() {
        OpenClException e = assertThrows(OpenClException.class,
                () -> Backends.open("opencl:42", cfg, AdamWConfig.ouro(), 1, 4));
        assertTrue(e.getMessage().contains("opencl:42"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Backends.open("tpu", cfg, AdamWConfig.ouro(), 1, 4));
    }
}
