package io.ouro.worker.comm;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.function.IntFunction;

/** W ranks as threads of one JVM over 127.0.0.1: the all-gather, the setup, running a body on every rank. */
public final class LocalRing {

    public static final String LOOPBACK = "127.0.0.1";

    private LocalRing() {
    }

    /**
     * One all-gather per rank for a single exchange among {@code world} threads, like
     * {@code BarrierTaskContext.allGather}: each call blocks until all ranks have called (at most
     * {@code timeout}) and returns the messages in rank order.
     */
    public static List<Function<String, List<String>>> allGather(int world, Duration timeout) {
        String[] slots = new String[world];
        CyclicBarrier barrier = new CyclicBarrier(world);
        List<Function<String, List<String>>> out = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            int rank = r;
            out.add(msg -> {
                slots[rank] = msg;
                try {
                    barrier.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
                } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
                    throw new IllegalStateException("all-gather of rank " + rank + " failed: " + e, e);
                }
                return List.copyOf(Arrays.asList(slots));
            });
        }
        return out;
    }

    /** Opens W ranks concurrently with the given configs (rank i uses configs.apply(i)). */
    public static List<RingAllReduce> open(int world, IntFunction<RingConfig> configs) {
        return open(world, configs, allGather(world, Duration.ofSeconds(60)));
    }

    /** As above, with rank i exchanging addresses through {@code gathers.get(i)}. */
    public static List<RingAllReduce> open(int world, IntFunction<RingConfig> configs,
                                           List<Function<String, List<String>>> gathers) {
        return parallel(world, r -> RingAllReduce.open(configs.apply(r), gathers.get(r)));
    }

    /** Opens W ranks on loopback with one fresh secret, the given timeouts and chunk size. */
    public static List<RingAllReduce> open(int world, int chunkBytes, Duration setup, Duration io) {
        byte[] secret = RingAllReduce.newSecret();
        return open(world, r -> RingConfig.of(r, world, LOOPBACK, secret).withTimeouts(setup, io).withChunkBytes(chunkBytes));
    }

    /** Runs {@code body} for every rank on its own thread; returns the results in rank order or rethrows the first failure. */
    public static <T> List<T> parallel(int world, IntFunction<T> body) {
        ExecutorService pool = Executors.newFixedThreadPool(world);
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                int rank = r;
                fs.add(pool.submit(() -> body.apply(rank)));
            }
            List<T> out = new ArrayList<>();
            RuntimeException first = null;
            for (Future<T> f : fs) {
                try {
                    out.add(f.get());
                } catch (ExecutionException e) {
                    if (first == null) {
                        first = e.getCause() instanceof RuntimeException re ? re : new RuntimeException(e.getCause());
                    }
                    out.add(null);
                }
            }
            if (first != null) {
                for (T t : out) {
                    if (t instanceof AutoCloseable c) {
                        try {
                            c.close();
                        } catch (Exception ignored) {
                            // already failing
                        }
                    }
                }
                throw first;
            }
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } finally {
            pool.shutdownNow();
        }
    }

    /** Runs {@code body} on every rank and returns what each threw (null where it returned normally). */
    public static List<Throwable> failures(int world, IntFunction<Runnable> body) {
        return parallel(world, r -> {
            try {
                body.apply(r).run();
                return (Throwable) null;
            } catch (Throwable t) {
                return t;
            }
        }).stream().toList();
    }

    public static void closeAll(List<RingAllReduce> ranks) {
        for (RingAllReduce r : ranks) {
            if (r != null) {
                r.close();
            }
        }
    }

    /**
     * A {@link RingSetup.Hook} that holds each of {@code world} ranks' failed right handshake until its own left
     * handshake is settled, so that no rank gives up (closing its listening socket and pending handshakes) while its
     * left neighbour still waits: every rank then sees the handshake it is in, whichever fails first. A rank held
     * past 10 s, or interrupted, is added to {@code problems}.
     */
    static RingSetup.Hook settleLeftFirst(int world, java.util.List<String> problems) {
        java.util.List<java.util.concurrent.CountDownLatch> leftSettled = new java.util.ArrayList<>();
        for (int r = 0; r < world; r++) {
            leftSettled.add(new java.util.concurrent.CountDownLatch(1));
        }
        return new RingSetup.Hook() {
            @Override
            public void leftHandshakeDone(int rank, String refusal) {
                leftSettled.get(rank).countDown();
            }

            @Override
            public void rightHandshakeFailed(int rank, RuntimeException failure) {
                try {
                    if (!leftSettled.get(rank).await(10, java.util.concurrent.TimeUnit.SECONDS)) {
                        problems.add("rank " + rank + ": its left handshake did not settle within 10 s");
                    }
                } catch (InterruptedException e) {
                    problems.add("rank " + rank + ": interrupted while held");
                    Thread.currentThread().interrupt();
                }
            }
        };
    }
}
