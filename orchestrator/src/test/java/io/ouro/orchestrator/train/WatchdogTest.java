package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.config.TrainSettings;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The driver's step-progress watchdog: its bound (set-up before a segment's first step and after its last, the
 * measured step time plus slack between steps) on a fake clock, and a rank hung on local Spark failing its segment
 * within that bound, the run then re-running the segment from its checkpoint and completing.
 */
class WatchdogTest {

    static final long MS = 1_000_000L;

    @TempDir
    Path tmp;

    @Test
    void firesOnceWhenNoStepArrivesWithinTheBoundAndReportsKeepItQuiet() {
        AtomicLong now = new AtomicLong();
        StepWatchdog w = new StepWatchdog(new TrainSettings.Watchdog(3, 60), now::get);
        w.segmentStarts(0, 10);

        // before the first step: the set-up bound, 60 s
        now.addAndGet(59_999 * MS);
        assertNull(w.check(), "within first_step_s");
        for (long s = 0; s < 4; s++) {
            now.addAndGet(500 * MS);
            w.stepReported(s, 500);
        }
        assertEquals(3500, w.stepBoundMs(), 1e-9, "measured 0.5 s + slack 3 s");
        // reports keep it quiet: 3.4 s after each of six more steps
        for (long s = 4; s < 9; s++) {
            now.addAndGet(3400 * MS);
            assertNull(w.check(), "3.4 s after step " + (s - 1));
            w.stepReported(s, 500);
        }
        now.addAndGet(3400 * MS);
        assertNull(w.check());
        now.addAndGet(200 * MS);
        String why = w.check();
        assertNotNull(why, "3.6 s without a step, over the 3.5 s bound");
        assertTrue(why.startsWith("watchdog: no step reported for 3.6 s since step 8, more than the bound of 3.5 s"
                + " (measured step 0.5 s"), why);
        assertTrue(why.contains("train.watchdog.slack_s 3"), why);
        now.addAndGet(10_000 * MS);
        assertNull(w.check(), "fires once per segment");

        // a new segment starts quiet, under the set-up bound even though steps have been measured
        w.segmentStarts(10, 20);
        now.addAndGet(59_000 * MS);
        assertNull(w.check(), "the first step of every segment gets first_step_s");
        now.addAndGet(2000 * MS);
        String setUp = w.check();
        assertNotNull(setUp);
        assertTrue(setUp.contains("since segment 10–19 started") && setUp.contains("train.watchdog.first_step_s"), setUp);
    }

    @Test
    void afterTheLastStepTheSetUpBoundAppliesAndTheMeasuredStepIsTheLongestRecentOne() {
        AtomicLong now = new AtomicLong();
        StepWatchdog w = new StepWatchdog(new TrainSettings.Watchdog(2, 30), now::get);
        w.segmentStarts(0, 30);
        w.stepReported(0, 4000);
        assertEquals(6000, w.stepBoundMs(), 1e-9, "a 4 s step + 2 s");
        for (long s = 1; s < StepWatchdog.WINDOW; s++) {
            w.stepReported(s, 100);
        }
        assertEquals(6000, w.stepBoundMs(), 1e-9, "the slow step is still among the last " + StepWatchdog.WINDOW);
        w.stepReported(StepWatchdog.WINDOW, 100);
        assertEquals(2100, w.stepBoundMs(), 1e-9, "and then it is not");
        w.stepReported(StepWatchdog.WINDOW, 9000);
        assertEquals(2100, w.stepBoundMs(), 1e-9, "a repeated line is not a step");
        for (long s = StepWatchdog.WINDOW + 1; s < 30; s++) {
            w.stepReported(s, 100);
        }
        // validation and the checkpoint snapshot after the last step: 29 s is quiet, 31 s is not
        now.addAndGet(29_000 * MS);
        assertNull(w.check());
        now.addAndGet(2000 * MS);
        String why = w.check();
        assertNotNull(why);
        assertTrue(why.contains("since its last step 29") && why.contains("bound of 30.0 s"), why);
    }

    @Test
    void defaultsAreTwoMinutesOfSlackAndHalfAnHourForSetUp() {
        TrainConfig cfg = config(tmp, "");
        assertEquals(new TrainSettings.Watchdog(120, 1800), cfg.train().watchdog());
    }

    static TrainConfig config(Path out, String watchdog) {
        return TrainConfig.parse("watchdog.yaml", """
                run: {name: watchdog-test, seed: 7, out: "%s"}
                model: {preset: small, vocab: 61, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 2}
                data: {synthetic: {tokens: 8000}}
                train:
                  workers: 2
                  device: java
                  batch_per_worker: 2
                  seq_len: 12
                  steps: 12
                  segment_steps: 6
                  checkpoint_every: 6
                  lr: 0.003
                  timeout_s: 60
                  retry: {backoff_s: 0}
                %s""".formatted(out.toUri(), watchdog));
    }

    /** Rank 1 hangs after this step, once. */
    static final long HANG = 8;
    static final double SLACK_S = 3;
    /** What the driver may add to the bound: its 100 ms poll, the RPC of the step line, a busy machine. */
    static final double MARGIN_S = 5;

    @Test
    @Timeout(300)
    void aHungRankFailsItsSegmentWithinTheBoundAndTheRunCompletesFromTheCheckpoint() throws Exception {
        TrainConfig cfg = config(tmp.resolve("run"), "  watchdog: {slack_s: " + SLACK_S + ", first_step_s: 120}\n");
        AtomicLong hungAt = new AtomicLong(), watchdogAt = new AtomicLong();
        AtomicBoolean hungOnce = new AtomicBoolean(), interrupted = new AtomicBoolean();
        CountDownLatch release = new CountDownLatch(1);
        SegmentTask.stepHook = (rank, step) -> {
            if (rank == 1 && step == HANG && hungOnce.compareAndSet(false, true)) {
                hungAt.set(System.nanoTime());
                try {
                    // far longer than the bound; only the driver's cancel (an interrupt) ends it early
                    release.await(120, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    interrupted.set(true);
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("rank 1 cancelled while hung after step " + step, e);
                }
            }
        };
        List<String> log = Collections.synchronizedList(new ArrayList<>());
        Trainer.Result r;
        long t0 = System.nanoTime();
        try (JavaSparkContext jsc = new JavaSparkContext(LocalSpark.conf(cfg))) {
            r = new Trainer(jsc, cfg, l -> {
                if (l.startsWith("watchdog: no step")) {
                    watchdogAt.compareAndSet(0, System.nanoTime());
                }
                System.out.println(l);
                log.add(l);
            }).run(false);
        } finally {
            release.countDown();
            SegmentTask.stepHook = null;
        }
        double runS = (System.nanoTime() - t0) / 1e9;
        String all = String.join("\n", log);
        assertTrue(hungOnce.get(), "rank 1 hung");
        assertTrue(watchdogAt.get() != 0, "the watchdog fired: " + all);
        String line = log.stream().filter(l -> l.startsWith("watchdog: no step")).findFirst().orElseThrow();
        Matcher b = Pattern.compile("more than the bound of ([0-9.]+) s").matcher(line);
        assertTrue(b.find(), line);
        double bound = Double.parseDouble(b.group(1));
        double failedAfter = (watchdogAt.get() - hungAt.get()) / 1e9;
        System.out.printf(Locale.ROOT, "watchdog: rank 1 hung after step %d; the segment failed %.2f s later"
                + " (bound %.1f s = measured step + slack %.0f s; allowed up to bound + %.0f s); run %.1f s%n",
                HANG, failedAfter, bound, SLACK_S, MARGIN_S, runS);
        assertTrue(line.contains("since step " + HANG), line);
        assertTrue(bound >= SLACK_S && bound < SLACK_S + 1, "the bound is the measured (short) step + slack: " + line);
        assertTrue(failedAfter >= SLACK_S - 0.5, "not before the bound: " + failedAfter + " s");
        assertTrue(failedAfter < bound + MARGIN_S, "within the bound + margin: " + failedAfter + " s, bound " + bound);

        // the cancel reached the hung task, and the segment was re-run from the checkpoint of step 6
        assertTrue(interrupted.get(), "the hung rank was interrupted by the cancel, not released by its latch");
        assertTrue(all.contains("segment 6–11 failed (failure 1 of at most 8 per 1000 committed steps): watchdog: no step"),
                all);
        assertTrue(all.contains("re-running from step 6 (checkpoint)"), all);
        assertEquals(12, r.steps().size(), "every step once");
        for (int s = 0; s < 12; s++) {
            assertEquals(s, r.steps().get(s).step());
        }
        assertTrue(runS < 100, "the run did not wait for the hung rank's 120 s latch: " + runS + " s");
    }
}
