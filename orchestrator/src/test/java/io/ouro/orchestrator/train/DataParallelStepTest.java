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

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The data-parallel step without Spark: two ranks on threads, joined by the TCP ring on loopback, equal one
 * rank with their two slices as one batch (within float summation order), and a rank whose forward pass is
 * non-finite makes both ranks skip the same update. The overlaps are proven, not only the order: with the test hold
 * ({@link GradientExchange#overlapHold}) the gradient exchange runs while the backward goes on ({@code hidden > 0})
 * and ZeRO-1's all-gather runs behind the next step ({@code gather_hidden = 1}); the overlapped all-gather gives the
 * same bits as the one waited for at the end of its step.
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

    @Test
    @Timeout(300)
    @SuppressWarnings("unchecked")
    void theExchangeRunsWhileTheBackwardGoesOn() throws Exception {
        for (boolean shard : new boolean[] {false, true}) {
            List<StepMetrics> m = (List<StepMetrics>) held(() -> train(CFG, STAGE, 2, "java", 2, 300, shard)).get(0);
            for (StepMetrics s : m) {
                System.out.printf("W = 2%s, step %d: exchange %.2f ms, %.0f%% hidden%n", shard ? ", ZeRO-1" : "",
                        s.step(), s.exchangeMs(), 100 * s.hidden());
                // the first bucket was exchanged before the backward ended; after it, hidden would be 0
                assertTrue(s.exchangeMs() > 0 && s.hidden() > 0 && s.hidden() <= 1, "step " + s.step() + ": "
                        + s.hidden());
            }
        }
    }

    @Test
    @Timeout(300)
    @SuppressWarnings("unchecked")
    void theParameterGatherRunsBehindTheNextForward() throws Exception {
        List<StepMetrics> m = (List<StepMetrics>) held(() -> train(CFG, STAGE, 2, "java", 2, 300, true)).get(0);
        for (StepMetrics s : m) {
            System.out.printf("W = 2, ZeRO-1, step %d: gather %.2f ms, %.0f%% hidden%n", s.step(), s.gatherMs(),
                    100 * s.gatherHidden());
        }
        // step 0 follows no update, step 2 skips its update (the non-finite rank), so step 3 follows no gather
        assertTrue(Double.isNaN(m.get(0).gatherHidden()) && Double.isNaN(m.get(3).gatherHidden()));
        for (int s : new int[] {1, 2}) {
            // waited for at the end of the previous step, nothing of it would run while the rank did other work
            assertTrue(m.get(s).gatherMs() > 0, "step " + s);
            assertEquals(1.0, m.get(s).gatherHidden(), "step " + s + ": the forward never waited for the gather");
        }
        List<Object> replicated = train(CFG, STAGE, 2, "java", 2, 300, false);
        for (StepMetrics s : (List<StepMetrics>) replicated.get(0)) {
            assertTrue(Double.isNaN(s.gatherHidden()), "no all-gather without ZeRO-1");
        }
    }

    @Test
    @Timeout(300)
    @SuppressWarnings("unchecked")
    void theOverlappedGatherGivesTheBitsOfTheGatherAtStepEnd() throws Exception {
        for (String device : new String[] {"java", System.getProperty("ouro.test.device", "opencl:0")}) {
            List<Object> overlapped = train(CFG, STAGE, 2, device, 2, 300, true), atEnd;
            DataParallelStep.gatherAtStepEnd = true;
            try {
                atEnd = train(CFG, STAGE, 2, device, 2, 300, true);
            } finally {
                DataParallelStep.gatherAtStepEnd = false;
            }
            for (int r = 0; r < 2; r++) {
                assertArrayEquals((float[]) atEnd.get(2 * r + 1), (float[]) overlapped.get(2 * r + 1),
                        device + ": rank " + r + "'s weights");
            }
            List<StepMetrics> a = (List<StepMetrics>) atEnd.get(0), o = (List<StepMetrics>) overlapped.get(0);
            for (int s = 0; s < 4; s++) {
                assertEquals(a.get(s).loss(), o.get(s).loss(), device + ": loss of step " + s);
                assertEquals(a.get(s).gradNorm(), o.get(s).gradNorm(), device + ": norm of step " + s);
            }
        }
    }

    /** {@code run} with the test hold on, which makes both overlaps certain. */
    static <T> T held(java.util.concurrent.Callable<T> run) throws Exception {
        GradientExchange.overlapHold = Duration.ofSeconds(30);
        try {
            return run.call();
        } finally {
            GradientExchange.overlapHold = null;
        }
    }
}
