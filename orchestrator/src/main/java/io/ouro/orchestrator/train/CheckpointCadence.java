package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;

/**
 * Where the next segment ends and whether it ends with a checkpoint: the planned segment
 * ({@link TrainConfig#segmentEnd}, {@link TrainConfig#checkpointAt}), cut short when
 * {@code train.checkpoint_every_minutes} is set and the wall time since the last checkpoint would pass it. A running
 * segment is never stopped (its W tasks would have to agree on where): the driver chooses the next segment's length
 * before it starts, from the step time it measured on the segment before, and ends that segment with a checkpoint.
 * Results do not depend on where segments end (data, learning rate and spike history are functions of the step), so a
 * checkpoint at any step resumes bit-identically; planned checkpoint and validation steps stay where they were.
 */
final class CheckpointCadence {

    /** Steps {@code [first, last)} and whether a checkpoint follows them. */
    record Segment(long first, long last, boolean checkpoint) {
    }

    private final TrainConfig cfg;
    private final double budgetMs;
    private double sinceCheckpointMs;
    private double stepMs = -1;

    CheckpointCadence(TrainConfig cfg) {
        this.cfg = cfg;
        double minutes = cfg.train().recovery().checkpointEveryMinutes();
        this.budgetMs = cfg.train().checkpointEvery() > 0 ? minutes * 60_000 : 0;
    }

    Segment next(long first) {
        long last = cfg.segmentEnd(first);
        boolean planned = cfg.checkpointAt(last);
        if (budgetMs <= 0) {
            return new Segment(first, last, planned);
        }
        if (stepMs < 0) {
            // no step time measured yet in this driver: one step measures it
            return new Segment(first, first + 1, cfg.checkpointAt(first + 1));
        }
        long n = steps(budgetMs - sinceCheckpointMs, stepMs);
        return n < last - first ? new Segment(first, first + n, true) : new Segment(first, last, planned || n == last - first);
    }

    /** The segment ran in {@code millis} of wall time on the driver (launch, ring set-up and checkpoint snapshot included). */
    void done(Segment s, double millis) {
        stepMs = millis / (s.last() - s.first());
        sinceCheckpointMs = s.checkpoint() ? 0 : sinceCheckpointMs + millis;
    }

    /** The run went back to a checkpoint. */
    void rewind() {
        sinceCheckpointMs = 0;
    }

    /** The steps that fit in {@code leftMs} at {@code stepMs} each: at least one. */
    static long steps(double leftMs, double stepMs) {
        return Math.max(1, (long) Math.floor(leftMs / Math.max(stepMs, 1e-3)));
    }
}
