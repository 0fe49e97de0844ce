package io.ouro.orchestrator.checkpoint;

import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * The driver's side of background checkpoints: it knows which checkpoints the ranks are writing and
 * commits each one ({@link CheckpointStore#tryCommit}) once all its shards are there. It runs on the
 * driver's thread, polled while a segment runs, so that commits and the log lines about them happen in
 * the order the driver sees them.
 */
public final class CheckpointCommitter {

    private record Pending(Path dir, int world, long since) {
    }

    private final CheckpointStore store;
    private final Consumer<String> log;
    private final TreeMap<Long, Pending> pending = new TreeMap<>();
    private String lastCommitted;
    private long lastCommittedStep = -1;

    public CheckpointCommitter(CheckpointStore store, Consumer<String> log) {
        this.store = store;
        this.log = log;
    }

    /** The ranks of a finished segment are writing the checkpoint of {@code step} into {@code dir}. */
    public void expect(long step, Path dir, int world) {
        pending.put(step, new Pending(dir, world, System.nanoTime()));
    }

    /** The path of the last checkpoint committed, null before the first. */
    public String lastCommitted() {
        return lastCommitted;
    }

    /** The step of the last checkpoint committed, -1 before the first. */
    public long lastCommittedStep() {
        return lastCommittedStep;
    }

    /** Commits every pending checkpoint whose shards are all written; logs what it did. */
    public void poll() {
        for (var it = pending.entrySet().iterator(); it.hasNext(); ) {
            var e = it.next();
            Pending p = e.getValue();
            try {
                Optional<String> done = store.tryCommit(e.getKey(), p.dir(), p.world());
                if (done.isPresent()) {
                    it.remove();
                    lastCommitted = done.get();
                    lastCommittedStep = Math.max(lastCommittedStep, e.getKey());
                    log.accept(String.format(Locale.ROOT, "checkpoint of step %d committed: %s (%d shard(s), written"
                            + " in the background for %.1f s)", e.getKey(), done.get(), p.world(),
                            (System.nanoTime() - p.since()) / 1e9));
                }
            } catch (CheckpointStore.WriteFailedException x) {
                it.remove();
                log.accept("warning: checkpoint of step " + e.getKey() + " not committed, a shard write failed: "
                        + x.getMessage());
            } catch (IOException x) {
                log.accept("warning: checkpoint of step " + e.getKey() + " not committed yet: " + x.getMessage());
            }
        }
    }

    /**
     * Polls until nothing is pending or {@code timeout} has passed; returns the steps still pending then,
     * which are given up (their writers are gone or stuck), with a warning.
     */
    public List<Long> await(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        poll();
        while (!pending.isEmpty() && System.nanoTime() < deadline) {
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            poll();
        }
        List<Long> left = new ArrayList<>(pending.keySet());
        for (long s : left) {
            log.accept("warning: checkpoint of step " + s + " not committed after " + timeout.toSeconds()
                    + " s: shards missing in " + pending.get(s).dir() + "; giving up on it");
        }
        pending.clear();
        return left;
    }
}
