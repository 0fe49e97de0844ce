package io.ouro.worker.util;

import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/**
 * Runs a loop body over index ranges on the common fork/join pool. Every index is handled by exactly
 * one call and each output element of our ops is computed by one call, so results do not depend on
 * the number of threads or on scheduling: runs are bit-reproducible.
 */
public final class Parallel {

    /** A loop body over {@code [lo, hi)}. */
    @FunctionalInterface
    public interface Body {
        void run(int lo, int hi);
    }

    private Parallel() {
    }

    /** Runs {@code body} over {@code [0, n)} in chunks of at least {@code grain} indices. */
    public static void range(int n, int grain, Body body) {
        if (n <= 0) {
            return;
        }
        int threads = ForkJoinPool.getCommonPoolParallelism();
        int chunks = Math.min((n + grain - 1) / Math.max(1, grain), threads * 4);
        if (chunks <= 1 || threads <= 1) {
            body.run(0, n);
            return;
        }
        IntStream.range(0, chunks).parallel().forEach(c -> {
            int lo = (int) ((long) n * c / chunks);
            int hi = (int) ((long) n * (c + 1) / chunks);
            if (lo < hi) {
                body.run(lo, hi);
            }
        });
    }
}
