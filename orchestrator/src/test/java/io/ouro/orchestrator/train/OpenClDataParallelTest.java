package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Training on Spark with the OpenCL backend (pocl in CI, or the device {@code ouro.test.device} names): W = 2 barrier
 * tasks, each running its 2 sequences as micro-batches of one with recompute: layer on an OpenCL device, give the same
 * per-step losses and final weights as W = 1 on the Java reference backend with the whole batch of 4 at once (the two
 * differ only in float rounding: 1e-4).
 */
class OpenClDataParallelTest {

    static TrainConfig config(int workers, int batch, String device, String shape) {
        return TrainConfig.parse("test.yaml", """
                run: {name: dp-opencl-test, seed: 11}
                model: {preset: small, vocab: 97, hidden: 32, layers: 2, heads: 2, ffn: 48, recurrent_steps: 3}
                data: {synthetic: {tokens: 20000}}
                train:
                  workers: %d
                  device: %s
                  batch_per_worker: %d
                  seq_len: 16
                  steps: 6
                  segment_steps: 3
                  lr: 0.003
                  warmup_steps: 2
                  clip: 1.0
                  timeout_s: 120
                  %s
                """.formatted(workers, device, batch, shape));
    }

    @Test
    @Timeout(300)
    void openClWorkersWithMicroBatchesEqualTheJavaReference() {
        List<String> log = new ArrayList<>();
        String device = System.getProperty("ouro.test.device", "opencl:0");
        Trainer.Result java = DataParallelTest.train(config(1, 4, "java", ""), new ArrayList<>());
        Trainer.Result cl = DataParallelTest.train(config(2, 2, device, "micro_batch: 1\n  recompute: layer"), log);
        assertEquals(6, cl.steps().size());
        double worstLoss = 0;
        for (int s = 0; s < 6; s++) {
            double a = java.steps().get(s).loss(), b = cl.steps().get(s).loss();
            worstLoss = Math.max(worstLoss, Math.abs(a - b) / Math.abs(a));
        }
        float[] p1 = java.parameters(), p2 = cl.parameters();
        double worstParam = 0;
        for (int i = 0; i < p1.length; i++) {
            worstParam = Math.max(worstParam, Math.abs(p1[i] - p2[i]));
        }
        System.out.printf("W=2 OpenCL (micro-batches of 1, recompute layer) vs W=1 Java after 6 steps: losses %.2e "
                + "relative, parameters %.2e absolute%n", worstLoss, worstParam);
        for (SegmentResult[] seg : cl.segments()) {
            for (SegmentResult r : seg) {
                assertTrue(r.device().contains("OpenCL"), "rank " + r.rank() + " ran on " + r.device());
            }
        }
        assertTrue(worstLoss <= 1e-4, "losses differ by " + worstLoss);
        assertTrue(worstParam <= 1e-4, "parameters differ by " + worstParam);
        assertTrue(log.stream().anyMatch(l -> l.startsWith("stage main step 5 loss")), "a log line per step");
    }
}
