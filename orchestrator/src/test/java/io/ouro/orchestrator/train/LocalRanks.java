package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.backend.Backends;
import io.ouro.worker.backend.TrainingBackend;
import io.ouro.worker.comm.RingAllReduce;
import io.ouro.worker.comm.RingConfig;
import io.ouro.worker.comm.RingGroup;
import io.ouro.worker.data.Sampler;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.ParamInit;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The data-parallel step without Spark, for tests and benchmarks: {@code world} ranks on threads, joined by the
 * TCP ring on loopback, each running {@link DataParallelStep} on its own backend.
 */
public final class LocalRanks {

    private LocalRanks() {
    }

    /** All-gathers among {@code world} threads, as the barrier task context gives (any number, one after the other). */
    public static List<Function<String, List<String>>> gather(int world) {
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

    /** Rank {@code rank}'s {@code rows} sequences of the stage's step {@code s} (counted from its start). */
    public interface Batches {
        Sampler.Batch of(long s, int rank, int rows);
    }

    /**
     * {@code steps} steps of {@code stage} with {@code world} ranks on {@code device}, {@code rows} sequences per rank,
     * {@code connections} rings, buckets of {@code bucketFloats}, the optimizer replicated or sharded (ZeRO-1), the
     * ring's timeout {@code t}, the gradient wire of {@code cfg}'s {@code train.exchange_dtype}: rank 0's metrics, every rank's final weights, then every rank's optimizer state.
     */
    public static List<Object> train(TrainConfig cfg, Stage stage, int world, String device, int connections,
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
                                 secret, t, t, RingConfig.DEFAULT_CHUNK_BYTES, cfg.train().exchangeDtype()), connections, g.get(rank))) {
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
                        dp.finish();
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
}
