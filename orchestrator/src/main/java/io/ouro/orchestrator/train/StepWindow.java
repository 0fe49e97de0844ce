package io.ouro.orchestrator.train;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * What the driver remembers of a run's steps: the last {@link #CAP} of them and {@link RunTotals} over all of
 * them, so that its memory does not grow with the run (every step is in the metrics file). A retry takes back
 * the steps after a segment start: the totals go back to those recorded there ({@link #segmentStarts}).
 */
final class StepWindow {

    /**
     * The steps kept: one checkpoint interval of the recipes ({@code checkpoint_every: 1000}), so that what a
     * retry takes back is still here, at a few hundred bytes a step.
     */
    static final int CAP = 1_000;
    /**
     * The segment starts whose totals are kept: a retry goes back to a checkpoint that still exists
     * ({@code keep_checkpoints} of them), far fewer segments back than this at any recipe's {@code segment_steps}.
     */
    static final int STARTS = 1_000;

    private record Start(long step, RunTotals before) {
    }

    private final int cap;
    private final ArrayDeque<StepMetrics> recent = new ArrayDeque<>();
    private final ArrayDeque<Start> starts = new ArrayDeque<>();
    private RunTotals totals = RunTotals.NONE;

    StepWindow() {
        this(CAP);
    }

    StepWindow(int cap) {
        this.cap = cap;
    }

    void add(StepMetrics m) {
        if (recent.size() == cap) {
            recent.removeFirst();
        }
        recent.addLast(m);
        totals = totals.plus(m);
    }

    /** A segment starts at {@code step}: what the totals were before it, for a retry that comes back here. */
    void segmentStarts(long step) {
        starts.removeIf(s -> s.step() >= step);
        if (starts.size() == STARTS) {
            starts.removeFirst();
        }
        starts.addLast(new Start(step, totals));
    }

    /**
     * The run goes back to {@code step}: the steps from it on are taken back, and the totals are those recorded
     * at the latest segment start not after it, plus the kept steps between the two (none when it is a segment
     * start). When no such start is kept any more, they count from the oldest kept step ({@link RunTotals#from}).
     */
    void rewind(long step) {
        recent.removeIf(m -> m.step() >= step);
        starts.removeIf(s -> s.step() > step);
        Start base = starts.peekLast();
        RunTotals t = base == null ? RunTotals.NONE : base.before();
        long after = base == null ? Long.MIN_VALUE : base.step();
        for (StepMetrics m : recent) {
            if (m.step() >= after) {
                t = t.plus(m);
            }
        }
        totals = t;
    }

    /** The kept steps, oldest first (a copy). */
    List<StepMetrics> recent() {
        return new ArrayList<>(recent);
    }

    RunTotals totals() {
        return totals;
    }

    /** How many steps and segment starts are held: bounded by {@link #CAP} + {@link #STARTS}. */
    int held() {
        return recent.size() + starts.size();
    }
}
