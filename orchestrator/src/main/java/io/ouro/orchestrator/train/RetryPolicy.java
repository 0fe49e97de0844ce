package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainSettings;
import io.ouro.orchestrator.checkpoint.CheckpointCommitter;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * Where a run starts and where it goes after a failed segment: from the newest valid checkpoint (after the
 * checkpoints still being written have been committed or given up), after a back-off, while the {@link Budget}
 * ({@code train.retry}) allows; without checkpoints a failure ends the run.
 */
final class RetryPolicy {

    /** Waits before a retry; tests pass one that only records. */
    interface Sleeper {
        void sleep(Duration d) throws InterruptedException;
    }

    private final TrainConfig cfg;
    private final CheckpointStore store;
    private final CheckpointCommitter committer;
    private final Consumer<String> log;
    private final Sleeper sleeper;
    private final Budget budget;

    /** {@code store} and {@code committer} are null when the run writes no checkpoints. */
    RetryPolicy(TrainConfig cfg, CheckpointStore store, CheckpointCommitter committer, Consumer<String> log) {
        this(cfg, store, committer, log, d -> Thread.sleep(d.toMillis()));
    }

    RetryPolicy(TrainConfig cfg, CheckpointStore store, CheckpointCommitter committer, Consumer<String> log,
                Sleeper sleeper) {
        this.cfg = cfg;
        this.store = store;
        this.committer = committer;
        this.log = log;
        this.sleeper = sleeper;
        this.budget = new Budget(cfg.train().recovery());
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
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String segment = "segment " + first + "–" + (last - 1);
        if (store == null) {
            log.accept(segment + " failed: " + root.getMessage());
            throw new IllegalStateException(segment + " failed and the run writes no checkpoints; giving up", e);
        }
        committer.await(Duration.ofSeconds(cfg.train().timeoutSeconds()));
        long next = newest(first);
        Duration wait;
        try {
            wait = budget.failure(next);
        } catch (IllegalStateException giveUp) {
            log.accept(segment + " failed: " + root.getMessage());
            throw new IllegalStateException(segment + " failed: " + giveUp.getMessage(), e);
        }
        log.accept(String.format(Locale.ROOT, "%s failed (failure %d of at most %d per %d committed steps): %s",
                segment, budget.inWindow(), budget.r.maxFailures(), budget.r.windowSteps(), root.getMessage()));
        log.accept("re-running from step " + next + (next == 0 ? " (no checkpoint yet)" : " (checkpoint)")
                + (wait.isZero() ? "" : " after " + seconds(wait) + " s (back-off)"));
        try {
            sleeper.sleep(wait);
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(segment + " failed; interrupted during the back-off", e);
        }
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

    static String seconds(Duration d) {
        double s = d.toMillis() / 1000.0;
        return s == Math.rint(s) ? Long.toString((long) s) : String.format(Locale.ROOT, "%.1f", s);
    }

    /**
     * The fault budget: failures counted in a sliding window of committed progress, at most {@code max_failures}
     * per {@code window_steps} steps; each failure is marked with the highest committed step reached so far, and
     * it leaves the window once the run has committed {@code window_steps} more. The back-off before a retry
     * doubles with each failure since committed progress last advanced, up to {@code backoff_max_s}.
     */
    static final class Budget {

        final TrainSettings.Recovery r;
        /** The committed step at each failure still in the window, oldest first. */
        private final ArrayDeque<Long> marks = new ArrayDeque<>();
        private long progress = -1;
        private int streak;

        Budget(TrainSettings.Recovery r) {
            this.r = r;
        }

        /**
         * A failure after which the run goes back to the committed step {@code committed}: the back-off before the
         * retry, or an {@link IllegalStateException} that says how many failures in how many steps.
         */
        Duration failure(long committed) {
            if (committed > progress) {
                progress = committed;
                streak = 0;
            }
            while (!marks.isEmpty() && progress - marks.peekFirst() >= r.windowSteps()) {
                marks.pollFirst();
            }
            marks.addLast(progress);
            streak++;
            if (marks.size() > r.maxFailures()) {
                long since = marks.peekFirst();
                throw new IllegalStateException(String.format(Locale.ROOT,
                        "%d failures within %d committed steps (since committed step %d), more than"
                                + " train.retry.max_failures %d per train.retry.window_steps %d; giving up",
                        marks.size(), progress - since, since, r.maxFailures(), r.windowSteps()));
            }
            double s = Math.min(r.backoffMaxSeconds(), r.backoffSeconds() * Math.pow(2, Math.min(streak - 1, 60)));
            return Duration.ofMillis(Math.round(s * 1000));
        }

        /** The failures in the window, the last one included. */
        int inWindow() {
            return marks.size();
        }
    }
}
