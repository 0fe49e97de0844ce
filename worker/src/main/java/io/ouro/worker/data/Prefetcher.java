package io.ouro.worker.data;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Reads batches on a background thread, {@code depth} steps ahead of the training loop, so that in
 * steady state the step never waits on storage. {@link #waitNanos()} reports how long the loop did wait.
 */
public final class Prefetcher implements AutoCloseable {

    private final java.util.function.LongFunction<Sampler.Batch> loader;
    private final String what;
    private final long last;
    private final long timeoutMs;
    private final BlockingQueue<Object> queue;
    private final Thread thread;
    private long next;
    private long waitNanos;
    private volatile boolean closed;

    /** Batches for steps {@code [first, last)} of rank {@code rank} of {@code world}. */
    public Prefetcher(Sampler sampler, int rank, int world, long first, long last, int depth, long timeoutMs) {
        this(s -> sampler.batch(s, rank, world), "rank " + rank, first, last, depth, timeoutMs);
    }

    /** Batches {@code loader(step)} for steps {@code [first, last)}. */
    public Prefetcher(java.util.function.LongFunction<Sampler.Batch> loader, String what, long first, long last,
                      int depth, long timeoutMs) {
        this.loader = loader;
        this.what = what;
        this.last = last;
        this.next = first;
        this.timeoutMs = timeoutMs;
        this.queue = new ArrayBlockingQueue<>(Math.max(1, depth));
        this.thread = new Thread(() -> produce(first), "prefetch " + what);
        thread.setDaemon(true);
        thread.start();
    }

    private void produce(long first) {
        try {
            for (long s = first; s < last && !closed; s++) {
                Object b;
                try {
                    b = loader.apply(s);
                } catch (RuntimeException e) {
                    b = e;
                }
                while (!closed && !queue.offer(b, 100, TimeUnit.MILLISECONDS)) {
                    // the loop is behind; try again unless closed
                }
                if (b instanceof RuntimeException) {
                    return;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The batch of the next step; waits at most the configured timeout. */
    public Sampler.Batch take() {
        if (next >= last) {
            throw new IllegalStateException("no step after " + (last - 1));
        }
        long t0 = System.nanoTime();
        Object b;
        try {
            b = queue.poll(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the batch of step " + next, e);
        }
        waitNanos += System.nanoTime() - t0;
        if (b == null) {
            throw new IllegalStateException("the batch of step " + next + " was not read within " + timeoutMs
                    + " ms (" + what + ")");
        }
        if (b instanceof RuntimeException e) {
            throw new IllegalStateException("reading the batch of step " + next + " failed: " + e.getMessage(), e);
        }
        next++;
        return (Sampler.Batch) b;
    }

    /** Total time {@link #take()} waited. */
    public long waitNanos() {
        return waitNanos;
    }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
    }
}
