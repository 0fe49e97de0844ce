package io.ouro.orchestrator.train;

import io.ouro.orchestrator.checkpoint.CheckpointCommitter;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * Where a run starts and where it goes after a failed segment: from the newest valid checkpoint (after
 * the checkpoints still being written have been committed or given up), up to {@code train.max_attempts}
 * failures; without checkpoints a failure ends the run.
 */
final class RetryPolicy {

    private final TrainConfig cfg;
    private final CheckpointStore store;
    private final CheckpointCommitter committer;
    private final Consumer<String> log;
    private int failures;

    /** {@code store} and {@code committer} are null when the run writes no checkpoints. */
    RetryPolicy(TrainConfig cfg, CheckpointStore store, CheckpointCommitter committer, Consumer<String> log) {
        this.cfg = cfg;
        this.store = store;
        this.committer = committer;
        this.log = log;
    }

    /** With resume: the step after the newest valid checkpoint under {@code run.out}, 0 when there is none. */
    long resumeStep() {
        long s = newest(Long.MAX_VALUE);
        log.accept(s == 0 ? "resume: no valid checkpoint under " + cfg.run().out() + ", starting at step 0"
                : "resume: continuing after the checkpoint of step " + s);
        return s;
    }

    /** The segment {@code [first, last)} failed with {@code e}: the step to re-run from, or an exception to give up. */
    long afterFailure(long first, long last, Throwable e) {
        failures++;
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        log.accept(String.format(Locale.ROOT, "segment %d–%d failed (attempt %d of %d): %s", first, last - 1, failures,
                cfg.train().maxAttempts(), root.getMessage()));
        if (failures >= cfg.train().maxAttempts() || store == null) {
            throw new IllegalStateException("segment " + first + "–" + (last - 1) + " failed " + failures
                    + " time(s); giving up", e);
        }
        committer.await(Duration.ofSeconds(cfg.train().timeoutSeconds()));
        long next = newest(first);
        log.accept("re-running from step " + next + (next == 0 ? " (no checkpoint yet)" : " (checkpoint)"));
        return next;
    }

    private long newest(long atMost) {
        if (store == null) {
            return 0;
        }
        try {
            return store.latestValid(Math.min(atMost, cfg.totalSteps()), cfg.hash(), m -> log.accept("warning: " + m))
                    .map(CheckpointStore.Info::step).orElse(0L);
        } catch (IOException e) {
            throw new UncheckedIOException("listing checkpoints under " + store.root(), e);
        }
    }
}
