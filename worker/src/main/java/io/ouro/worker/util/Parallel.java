package io.ouro.worker.util;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;

/**
 * Runs a loop body over index ranges on the project's own fork/join pool, one thread per core
 * (system property {@code ouro.threads} overrides). The JDK's common pool is not used: it has one
 * thread fewer than there are cores, which on a 2-core machine means no parallelism at all.
 * Every index is handled by exactly one call and each output element of our ops is computed by one
 * call, so results do not depend on the number of threads or on scheduling: runs are bit-reproducible.
 */
public final class Parallel {

    /** A loop body over {@code [lo, hi)}. */
    @FunctionalInterface
    public interface Body {
        void run(int lo, int hi);
    }

    private static final int THREADS = Integer.getInteger("ouro.threads", Runtime.getRuntime().availableProcessors());
    private static final ForkJoinPool POOL = new ForkJoinPool(Math.max(1, THREADS), pool -> {
        var t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
        t.setName("ouro-compute-" + t.getPoolIndex());
        t.setDaemon(true);
        return t;
    }, null, false);

    private Parallel() {
    }

    public static int threads() {
        return POOL.getParallelism();
    }

    /** Runs {@code body} over {@code [0, n)} in chunks of at least {@code grain} indices. */
    public static void range(int n, int grain, Body body) {
        if (n <= 0) {
            return;
        }
        int threads = POOL.getParallelism();
        int chunks = Math.min((n + grain - 1) / Math.max(1, grain), threads * 4);
        if (chunks <= 1 || threads <= 1) {
            body.run(0, n);
            return;
        }
        List<RecursiveAction> tasks = new ArrayList<>(chunks);
        for (int c = 0; c < chunks; c++) {
            int lo = (int) ((long) n * c / chunks);
            int hi = (int) ((long) n * (c + 1) / chunks);
            tasks.add(new RecursiveAction() {
                private static final long serialVersionUID = 1L;

                @Override
                protected void compute() {
                    if (lo < hi) {
                        body.run(lo, hi);
                    }
                }
            });
        }
        if (ForkJoinTask.inForkJoinPool() && ForkJoinTask.getPool() == POOL) {
            ForkJoinTask.invokeAll(tasks);
        } else {
            POOL.invoke(new RecursiveAction() {
                private static final long serialVersionUID = 1L;

                @Override
                protected void compute() {
                    invokeAll(tasks);
                }
            });
        }
    }
}
