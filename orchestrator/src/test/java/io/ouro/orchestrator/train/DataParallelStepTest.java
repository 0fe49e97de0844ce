package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.backend.Backends;
import io.ouro.worker.backend.TrainingBackend;
import io.ouro.worker.comm.RingAllReduce;
import io.ouro.worker.comm.RingGroup;
import io.ouro.worker.comm.RingConfig;
import io.ouro.worker.data.Sampler;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.ParamInit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

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

    /** All-gathers among {@code world} threads, as the barrier task context gives (any number, one after the other). */
    static List<Function<String, List<String>>> gather(int world) {
        String[] slots = new String[world];
        CyclicBarrier barrier = new CyclicBarrier(world);
        CyclicBarrier read = new CyclicBarrier(world);
        List<Function<String, List<String>>> out = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            int rank = r;
            out.add(msg -> {
                slots[rank] = msg;
                try {
                    barrier.await(30, TimeUnit.SECONDS);
                    List<String> all = List.of(slots.clone());
                    read.await(30, TimeUnit.SECONDS); // nobody writes the next round's slot before all have read
                    return all;
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
        }
        return out;
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
        return train(cfg, stage, world, device, connections, bucketFloats, shard, 4 / world, 4,
                (s, rank, rows) -> batch(s, rank * rows, rows), Duration.ofSeconds(30));
    }

    /** Rank {@code rank}'s {@code rows} sequences of the stage's step {@code s} (counted from its start). */
    interface Batches {
        Sampler.Batch of(long s, int rank, int rows);
    }

    /** As above with {@code rows} sequences per rank, {@code steps} steps, the batches given, the ring's timeout. */
    static List<Object> train(TrainConfig cfg, Stage stage, int world, String device, int connections,
                              int bucketFloats, boolean shard, int rows, int steps, Batches batches, Duration t)
            throws Exception {
        byte[] secret = RingAllReduce.newSecret();
        List<Function<String, List<String>>> g = gather(world);
        ExecutorService pool = Executors.newFixedThreadPool(world);
        try {
            List<Future<Object[]>> ranks = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                int rank = r;
                ranks.add(pool.submit(() -> {
                    try (TrainingBackend b = Backends.open(device, stage.model(), AdamWConfig.ouro(), rows, stage.seqLen());
                         RingGroup ring = RingGroup.open(new RingConfig(rank, world, "127.0.0.1", "127.0.0.1",
                                 secret, t, t, RingConfig.DEFAULT_CHUNK_BYTES), connections, g.get(rank))) {
                        if (shard && world > 1) {
                            long[] o = DataParallelStep.owners(b.layout().totalSize(), world);
                            b.shardOptimizer(o[rank], o[rank + 1]);
                        }
                        b.setParameters(ParamInit.initialize(b.layout()));
                        var sp = cfg.train().spike();
                        DataParallelStep dp = new DataParallelStep(b, ring, stage, cfg.train().clip(),
                                new SpikeGuard(sp.window(), sp.minHistory(), sp.sigma(), sp.maxConsecutive(), "main"),
                                cfg.train().injectNonFiniteAtStep() < 0 ? -1
                                        : stage.firstStep() + cfg.train().injectNonFiniteAtStep(),
                                bucketFloats, shard, t.toMillis());
                        List<StepMetrics> m = new ArrayList<>();
                        for (long s = 0; s < steps; s++) {
                            m.add(dp.step(stage.firstStep() + s, batches.of(s, rank, rows), 0).metrics());
                        }
                        return new Object[] {m, b.parameters(), b.optimizerState()};
                    }
                }));
            }
            List<Object> out = new ArrayList<>();
            for (Future<Object[]> f : ranks) {
                Object[] r = f.get(t.toSeconds() * (steps + 4L), TimeUnit.SECONDS);
                out.add(r[0]);
                out.add(r[1]);
            }
            for (Future<Object[]> f : ranks) {
                out.add(f.get()[2]);
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
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
