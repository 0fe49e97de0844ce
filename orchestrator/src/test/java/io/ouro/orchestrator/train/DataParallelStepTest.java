package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.data.Sampler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The data-parallel step without Spark: two ranks on threads, joined by the TCP ring on loopback, equal one
 * rank with their two slices as one batch (within float summation order), and a rank whose forward pass is
 * non-finite makes both ranks skip the same update.
 */
class DataParallelStepTest {

    static final TrainConfig CFG = TrainConfig.parse("step.yaml", """
            model: {preset: small, vocab: 53, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 2}
            data: {synthetic: {tokens: 1000}}
            train: {workers: 2, device: java, batch_per_worker: 2, seq_len: 8, steps: 4, lr: 0.01, clip: 1.0,
                    inject_nonfinite_at_step: 2}
            """);
    static final Stage STAGE = CFG.stages().get(0);

    /** Rows {@code [from, from + rows)} of step {@code s}'s global batch of 4 random sequences. */
    static Sampler.Batch batch(long s, int from, int rows) {
        int len = STAGE.seqLen();
        SplittableRandom r = new SplittableRandom(1000 + s);
        int[] all = new int[4 * len], tgt = new int[4 * len];
        for (int i = 0; i < all.length; i++) {
            all[i] = r.nextInt(53);
            tgt[i] = r.nextInt(53);
        }
        return new Sampler.Batch(s, rows, len, Arrays.copyOfRange(all, from * len, (from + rows) * len),
                Arrays.copyOfRange(tgt, from * len, (from + rows) * len));
    }

    /** Runs steps 0-3 with {@code world} ranks; returns rank 0's metrics and every rank's final weights. */
    static List<Object> train(int world) throws Exception {
        return train(CFG, STAGE, world, "java", 2, 1 << 20, false);
    }

    /**
     * The first 4 steps of {@code stage} (the non-finite one counted from its start) with {@code world} ranks on {@code device}, {@code connections} rings, buckets of
     * {@code bucketFloats}, the optimizer replicated or sharded (ZeRO-1); rank 0's metrics, every rank's final
     * weights, then every rank's optimizer state.
     */
    static List<Object> train(TrainConfig cfg, Stage stage, int world, String device, int connections,
                              int bucketFloats, boolean shard) throws Exception {
        return LocalRanks.train(cfg, stage, world, device, connections, bucketFloats, shard, 4 / world, 4,
                (s, rank, rows) -> batch(s, rank * rows, rows), Duration.ofSeconds(30));
    }

    @Test
    @Timeout(300)
    @SuppressWarnings("unchecked")
    void twoRanksOnALocalRingEqualOneRankWithBothSlices() throws Exception {
        List<Object> one = train(1), two = train(2);
        List<StepMetrics> m1 = (List<StepMetrics>) one.get(0), m2 = (List<StepMetrics>) two.get(0);
        float[] p1 = (float[]) one.get(1), p2 = (float[]) two.get(1), p2b = (float[]) two.get(3);
        assertTrue(Arrays.equals(p2, p2b), "both ranks hold bit-identical weights");
        double worst = 0;
        for (int i = 0; i < p1.length; i++) {
            worst = Math.max(worst, Math.abs(p1[i] - p2[i]));
        }
        for (int s = 0; s < 4; s++) {
            if (s != 2) {
                assertEquals(m1.get(s).tokens(), m2.get(s).tokens());
                assertEquals(m1.get(s).loss(), m2.get(s).loss(), 1e-6 * Math.abs(m1.get(s).loss()), "loss of step " + s);
                assertNull(m2.get(s).skipped());
            }
        }
        // step 2: the last rank's loss is non-finite; with one rank that rank is the only one
        assertEquals("non-finite loss on 1 rank(s)", m2.get(2).skipped());
        assertEquals("non-finite loss on 1 rank(s)", m1.get(2).skipped());
        System.out.printf("data-parallel step on a local ring: W = 2 vs W = 1 after 4 steps (one skipped): weights within"
                + " %.2e%n", worst);
        assertTrue(worst <= 1e-5, "weights differ by " + worst);
    }
}
