package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainSettings;

import java.util.ArrayDeque;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * The driver's step-progress watchdog ({@code train.watchdog}): how long a running segment may go without
 * rank 0 reporting a step before the driver gives it up. Between steps the bound is the measured step time (the
 * longest of the last {@link #WINDOW} steps' wall times, kept across segments) plus {@code slack_s}; before a
 * segment's first step and after its last it is {@code first_step_s}, which covers the stage launch, the ring
 * join, loading or initialising the state and the first kernel compiles, and the validation and checkpoint
 * snapshot at the end. A hung or dead rank stops rank 0 too (it waits for that rank's gradients), so rank 0's
 * silence stands for every rank's. The {@link SegmentRunner} asks {@link #check} as it polls the segment's job
 * and cancels the job when it answers.
 */
final class StepWatchdog {

    /** Steps whose wall times make the measured step time. */
    static final int WINDOW = 20;

    private final double slackMs, firstStepMs;
    private final LongSupplier nanos;
    private final ArrayDeque<Double> recentMs = new ArrayDeque<>();
    private long first, last, lastStep;
    private long since;
    private boolean fired;

    StepWatchdog(TrainSettings.Watchdog w, LongSupplier nanos) {
        this.slackMs = w.slackSeconds() * 1000;
        this.firstStepMs = w.firstStepSeconds() * 1000;
        this.nanos = nanos;
    }

    /** Segment {@code [first, last)} is submitted now. */
    void segmentStarts(long first, long last) {
        this.first = first;
        this.last = last;
        this.lastStep = first - 1;
        this.since = nanos.getAsLong();
        this.fired = false;
    }

    /** Rank 0 reported step {@code step}, which took {@code wallMs} on the worker. */
    void stepReported(long step, double wallMs) {
        if (step <= lastStep) {
            return;
        }
        lastStep = step;
        since = nanos.getAsLong();
        if (Double.isFinite(wallMs) && wallMs >= 0) {
            recentMs.addLast(wallMs);
            if (recentMs.size() > WINDOW) {
                recentMs.pollFirst();
            }
        }
    }

    /** The measured step time in ms: the longest of the recent steps; NaN before any step. */
    double measuredMs() {
        return recentMs.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
    }

    /**
     * The bound between steps in ms, measured step time plus slack; NaN before any step. The ring's peer timeout
     * follows it ({@link SegmentRunner#peerTimeoutMillis}).
     */
    double stepBoundMs() {
        return measuredMs() + slackMs;
    }

    /** The bound that applies now: set-up before the segment's first step and after its last, else between steps. */
    double boundMs() {
        return setUp() ? firstStepMs : stepBoundMs();
    }

    private boolean setUp() {
        return lastStep < first || lastStep >= last - 1 || recentMs.isEmpty();
    }

    /** Null while the segment is within its bound; once past it, the reason (once per segment). */
    String check() {
        if (fired) {
            return null;
        }
        double silentMs = (nanos.getAsLong() - since) / 1e6;
        double bound = boundMs();
        if (silentMs <= bound) {
            return null;
        }
        fired = true;
        String what = lastStep < first ? "since segment " + first + "–" + (last - 1) + " started (set-up and its first step)"
                : lastStep >= last - 1 ? "since its last step " + lastStep + " (validation, checkpoint snapshot, results)"
                : "since step " + lastStep;
        String rule = setUp() ? "train.watchdog.first_step_s"
                : String.format(Locale.ROOT, "measured step %.1f s (longest of the last %d) + train.watchdog.slack_s %s",
                measuredMs() / 1000, recentMs.size(), RetryPolicy.seconds(java.time.Duration.ofMillis(Math.round(slackMs))));
        return String.format(Locale.ROOT, "watchdog: no step reported for %.1f s %s, more than the bound of %.1f s (%s);"
                + " a rank is hung or lost, cancelling the segment", silentMs / 1000, what, bound / 1000, rule);
    }
}
