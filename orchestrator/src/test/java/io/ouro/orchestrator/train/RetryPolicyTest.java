package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainSettings;
import io.ouro.orchestrator.checkpoint.CheckpointCommitter;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fault budget ({@code train.retry}): failures counted per window of committed steps, renewed by progress, and
 * the back-off before each retry. Nothing sleeps: the budget returns the waits, and {@link RetryPolicy} takes an
 * injected sleeper.
 */
class RetryPolicyTest {

    /** 3 failures per 100 committed steps, 10 s doubling to 60 s. */
    static final TrainSettings.Recovery R = new TrainSettings.Recovery(3, 100, 10, 60, 0, 0);

    static long seconds(Duration d) {
        return d.toMillis() / 1000;
    }

    @Test
    void failuresSpreadOverALongRunNeverEndIt() {
        RetryPolicy.Budget b = new RetryPolicy.Budget(R);
        // a burst of 3 failures every 100 committed steps for a million steps: 30,000 failures, never more than 3
        // within 100 committed steps
        for (long step = 0; step < 1_000_000; step += 100) {
            for (int i = 0; i < 3; i++) {
                b.failure(step);
            }
            assertEquals(3, b.inWindow());
        }
        // spread out: one failure every 40 committed steps, the window holds 3 at most
        RetryPolicy.Budget sparse = new RetryPolicy.Budget(R);
        for (long step = 0; step < 1_000_000; step += 40) {
            sparse.failure(step);
            assertEquals(Math.min(3, step / 40 + 1), sparse.inWindow());
        }
    }

    @Test
    void tooManyFailuresWithoutProgressEndTheRunSayingHowMany() {
        RetryPolicy.Budget b = new RetryPolicy.Budget(R);
        b.failure(500);
        b.failure(500);
        b.failure(560); // 60 steps of progress: not enough to renew the window
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> b.failure(599));
        assertEquals("4 failures within 99 committed steps (since committed step 500), more than"
                + " train.retry.max_failures 3 per train.retry.window_steps 100; giving up", e.getMessage());

        // a failure loop (no step committed at all) ends after max_failures + 1
        RetryPolicy.Budget loop = new RetryPolicy.Budget(R);
        for (int i = 0; i < 3; i++) {
            loop.failure(0);
        }
        assertTrue(assertThrows(IllegalStateException.class, () -> loop.failure(0)).getMessage()
                .startsWith("4 failures within 0 committed steps"));

        // max_failures 0: the first failure ends the run
        RetryPolicy.Budget none = new RetryPolicy.Budget(new TrainSettings.Recovery(0, 100, 10, 60, 0, 0));
        assertThrows(IllegalStateException.class, () -> none.failure(7));
    }

    @Test
    void windowSlidesWithCommittedSteps() {
        RetryPolicy.Budget b = new RetryPolicy.Budget(R);
        b.failure(0);
        b.failure(50);
        b.failure(99);
        assertEquals(3, b.inWindow());
        b.failure(100); // the failure at 0 has left the window: 50, 99, 100
        assertEquals(3, b.inWindow());
        assertThrows(IllegalStateException.class, () -> b.failure(120)); // 50, 99, 100, 120
    }

    @Test
    void backOffDoublesCapsAndStartsAgainAfterProgress() {
        RetryPolicy.Budget b = new RetryPolicy.Budget(new TrainSettings.Recovery(10, 1000, 10, 60, 0, 0));
        List<Long> waits = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            waits.add(seconds(b.failure(200)));
        }
        assertEquals(List.of(10L, 20L, 40L, 60L, 60L), waits, "doubling from 10 s, capped at 60 s");
        assertEquals(10, seconds(b.failure(201)), "one committed step of progress starts the back-off again");
        assertEquals(20, seconds(b.failure(201)));
        assertEquals(40, seconds(b.failure(150)), "a checkpoint found behind the progress is no progress");

        RetryPolicy.Budget off = new RetryPolicy.Budget(new TrainSettings.Recovery(10, 1000, 0, 0, 0, 0));
        assertEquals(Duration.ZERO, off.failure(0));
        assertEquals(Duration.ZERO, off.failure(0));
    }

    @Test
    void retryPolicySleepsThroughTheInjectedSleeperAndGivesUpWithTheBudgetsMessage(@TempDir Path tmp) throws Exception {
        TrainConfig cfg = TrainConfig.parse("retry.yaml", """
                run: {name: retry-test, out: "%s"}
                data: {synthetic: {tokens: 1000}}
                train: {workers: 1, checkpoint_every: 10, retry: {max_failures: 2, window_steps: 50, backoff_s: 5}}
                stages:
                  - {name: a, steps: 100, seq_len: 8, batch_per_worker: 1}
                """.formatted(tmp.toUri()));
        CheckpointStore store = new CheckpointStore(cfg.run().out(), 3, new org.apache.hadoop.conf.Configuration());
        List<Duration> slept = new ArrayList<>();
        List<String> log = new ArrayList<>();
        RetryPolicy p = new RetryPolicy(cfg, store, new CheckpointCommitter(store, log::add), log::add, slept::add);
        RuntimeException lost = new RuntimeException("executor lost");
        assertEquals(0, p.afterFailure(0, 10, lost), "no checkpoint yet: from step 0");
        assertEquals(0, p.afterFailure(0, 10, lost));
        assertEquals(List.of(Duration.ofSeconds(5), Duration.ofSeconds(10)), slept);
        assertTrue(log.contains("segment 0–9 failed (failure 2 of at most 2 per 50 committed steps): executor lost"),
                log.toString());
        assertTrue(log.contains("re-running from step 0 (no checkpoint yet) after 10 s (back-off)"), log.toString());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.afterFailure(0, 10, lost));
        assertEquals("segment 0–9 failed: 3 failures within 0 committed steps (since committed step 0), more than"
                + " train.retry.max_failures 2 per train.retry.window_steps 50; giving up", e.getMessage());
        assertEquals(lost, e.getCause());
        assertEquals(2, slept.size(), "no back-off before giving up");
    }
}
