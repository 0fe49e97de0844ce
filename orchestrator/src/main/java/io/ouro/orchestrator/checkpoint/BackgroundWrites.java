package io.ouro.orchestrator.checkpoint;

import io.ouro.tokenizer.fs.HadoopFiles;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Shard writes that run in the executor JVM after the task that snapshotted the state has returned, so
 * that writing overlaps the next segment. Each writer (a run's rank) has at most one write in flight: the
 * next one first waits for it, within a timeout. A write that fails leaves {@code shard-r-of-W.error} with
 * its error where the marker would be, so the driver stops waiting for it and says why.
 */
public final class BackgroundWrites {

    private static final Map<String, CompletableFuture<Void>> LAST = new HashMap<>();

    private BackgroundWrites() {
    }

    /** What a background write does; its errors are recorded, not thrown. */
    @FunctionalInterface
    public interface Write {
        void run() throws IOException;
    }

    /**
     * Starts {@code write} on a daemon thread once the previous write of {@code writer} has ended (waiting at
     * most {@code wait}).
     */
    public static void submit(String writer, Duration wait, FileSystem fs, Path dir, int rank, int world, Write write)
            throws IOException {
        CompletableFuture<Void> prev;
        synchronized (LAST) {
            prev = LAST.get(writer);
        }
        if (prev != null) {
            try {
                prev.get(wait.toMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                throw new IOException(writer + ": the previous checkpoint write is still running after " + wait.toSeconds()
                        + " s (train.timeout_s)", e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(writer + ": interrupted waiting for the previous checkpoint write", e);
            } catch (ExecutionException e) {
                // that write's failure is already recorded in its checkpoint's directory
            }
        }
        CompletableFuture<Void> f = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                write.run();
            } catch (Throwable e) {
                recordError(fs, dir, rank, world, e);
            } finally {
                f.complete(null);
            }
        }, "ouro-checkpoint-writer " + writer);
        t.setDaemon(true);
        synchronized (LAST) {
            LAST.put(writer, f);
        }
        t.start();
    }

    private static void recordError(FileSystem fs, Path dir, int rank, int world, Throwable e) {
        StringWriter w = new StringWriter();
        e.printStackTrace(new PrintWriter(w));
        System.err.println("ouro: writing shard " + rank + " of " + world + " into " + dir + " failed: " + w);
        try {
            HadoopFiles.write(fs, new Path(dir, ".tmp-" + CheckpointStore.errorName(rank, world)),
                    new Path(dir, CheckpointStore.errorName(rank, world)),
                    (e.getClass().getSimpleName() + ": " + e.getMessage()).getBytes(StandardCharsets.UTF_8));
        } catch (IOException io) {
            System.err.println("ouro: could not record that error in " + dir + ": " + io.getMessage()
                    + "; the driver will give up on this checkpoint after train.timeout_s");
        }
    }
}
