package io.ouro.worker.data;

import java.util.ArrayDeque;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Reads batches ahead of the training loop: the next {@code depth} steps' batches are read concurrently
 * (one thread each; a sampler over storage also reads each batch's windows concurrently), so in steady
 * state the step never waits on storage. At most {@code depth} batches are in flight or waiting, which
 * bounds the threads and the bytes held. {@link #waitNanos()} reports how long the loop did wait.
 */
public final class Prefetcher implements AutoCloseable {

    private final java.util.function.LongFunction<Sampler.Batch> loader;
    private final String what;
    private final long last;
    private final long timeoutMs;
    private final ExecutorService pool;
    private final ArrayDeque<Future<Sampler.Batch>> ahead = new ArrayDeque<>();
    private long next, submitted;
    private long waitNanos;

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
        this.submitted = first;
        this.timeoutMs = timeoutMs;
        int d = Math.max(1, depth);
        this.pool = Executors.newFixedThreadPool(d, r -> {
            Thread t = new Thread(r, "prefetch " + what);
            t.setDaemon(true);
            return t;
        });
        while (ahead.size() < d && submitted < last) {
            submit();
        }
    }

    private void submit() {
        long s = submitted++;
        ahead.add(pool.submit(() -> loader.apply(s)));
    }

    /** The batch of the next step; waits at most the configured timeout. */
    public Sampler.Batch take() {
        if (next >= last) {
            throw new IllegalStateException("no step after " + (last - 1));
        }
        long t0 = System.nanoTime();
        Future<Sampler.Batch> f = ahead.poll();
        Sampler.Batch b;
        try {
            b = f.get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the batch of step " + next, e);
        } catch (TimeoutException e) {
            throw new IllegalStateException("the batch of step " + next + " was not read within " + timeoutMs
                    + " ms (" + what + ")");
        } catch (ExecutionException e) {
            throw new IllegalStateException("reading the batch of step " + next + " failed: " + e.getCause().getMessage(),
                    e.getCause());
        } finally {
            waitNanos += System.nanoTime() - t0;
        }
        next++;
        if (submitted < last) {
            submit();
        }
        return b;
    }

    /** Total time {@link #take()} waited. */
    public long waitNanos() {
        return waitNanos;
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }
}
