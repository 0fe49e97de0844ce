package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.comm.WireDtype;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code train.exchange_dtype: bf16} on a short run of the small test model at W = 2 (ranks on threads, the TCP ring
 * on loopback): both ranks hold bit-identical weights, and the losses and weights stay within the stated bounds of
 * the same run over the fp32 wire.
 */
class Bf16WireTrainingTest {

    static final int STEPS = 8;

    static TrainConfig config(String dtype) {
        return TrainConfig.parse("wire.yaml", """
                model: {preset: small, vocab: 53, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 2}
                data: {synthetic: {tokens: 1000}}
                train: {workers: 2, device: java, batch_per_worker: 2, seq_len: 8, steps: %d, lr: 0.01, clip: 1.0,
                        exchange_dtype: %s}
                """.formatted(STEPS, dtype));
    }

    @SuppressWarnings("unchecked")
    static Object[] train(String dtype) throws Exception {
        TrainConfig cfg = config(dtype);
        Stage stage = cfg.stages().get(0);
        List<Object> out = LocalRanks.train(cfg, stage, 2, "java", 2, 1 << 20, false, 2, STEPS,
                (s, rank, rows) -> DataParallelStepTest.batch(s, rank * rows, rows), Duration.ofSeconds(30));
        return new Object[] {cfg, out.get(0), out.get(1), out.get(3)};
    }

    @Test
    @Timeout(300)
    @SuppressWarnings("unchecked")
    void theBf16WireKeepsRanksIdenticalAndStaysWithinItsBoundOfFp32() throws Exception {
        Object[] fp = train("fp32"), bf = train("bf16");
        assertEquals(WireDtype.BF16, ((TrainConfig) bf[0]).train().exchangeDtype(), "the config reaches the ring");
        List<StepMetrics> mf = (List<StepMetrics>) fp[1], mb = (List<StepMetrics>) bf[1];
        float[] wf = (float[]) fp[2], wb = (float[]) bf[2], wb1 = (float[]) bf[3];
        assertTrue(Arrays.equals(wb, wb1), "both ranks hold bit-identical weights over the bf16 wire");
        assertTrue(Arrays.equals(wf, (float[]) fp[3]), "and over the fp32 wire");
        assertFalse(Arrays.equals(wf, wb), "the bf16 wire changes the weights (else this test proves nothing)");
        double worstW = 0, maxW = 0;
        for (int i = 0; i < wf.length; i++) {
            worstW = Math.max(worstW, Math.abs(wf[i] - wb[i]));
            maxW = Math.max(maxW, Math.abs(wf[i]));
        }
        double worstLoss = 0;
        for (int s = 0; s < STEPS; s++) {
            worstLoss = Math.max(worstLoss, Math.abs(mf.get(s).loss() - mb.get(s).loss()) / mf.get(s).loss());
        }
        System.out.printf("bf16 vs fp32 wire, W = 2, %d steps: weights within %.3e (largest weight %.3f, lr 0.01),"
                        + " loss within %.3e relative (final %.6f vs %.6f)%n", STEPS, worstW, maxW, worstLoss,
                mf.get(STEPS - 1).loss(), mb.get(STEPS - 1).loss());
        // Measured (java backend): weights within 6.2e-3, losses within 4.4e-4 relative. The weight gap is
        // not rounding-sized: AdamW moves each weight by about lr per step whatever the gradient's size, so where the
        // two ranks' gradients nearly cancel, the bf16 rounding (2^-8 of the parts, not of their sum) changes that
        // element's update by a good share of lr. Hence a bound in units of lr, 2·lr over 8 steps (3x the measured
        // 0.62·lr), and 2e-3 relative on every step's loss (4.5x the measured).
        assertTrue(worstW <= 2 * 0.01, "bf16 wire weights differ from fp32's by " + worstW + " > 2·lr");
        assertTrue(worstLoss <= 2e-3, "bf16 wire loss differs from fp32's by " + worstLoss + " relative > 2e-3");
    }
}
