package io.ouro.orchestrator.train;

/**
 * Sums over every step the driver has reported since {@code from} (the first step counted): steps, tokens,
 * skipped updates, where the time went, and the lowest and highest loss, so that a run of any length is
 * summed up without keeping its steps.
 */
public record RunTotals(long from, long steps, long tokens, long skipped, double wallMs, double computeMs,
                        double commMs, double dataWaitMs, double minLoss, double maxLoss) {

    static final RunTotals NONE = new RunTotals(0, 0, 0, 0, 0, 0, 0, 0, Double.NaN, Double.NaN);

    RunTotals plus(StepMetrics m) {
        boolean none = steps == 0;
        return new RunTotals(none ? m.step() : from, steps + 1, tokens + m.tokens(), skipped + (m.skipped() == null ? 0 : 1),
                wallMs + m.wallMs(), computeMs + m.computeMs(), commMs + m.commMs(), dataWaitMs + m.dataWaitMs(),
                none || m.loss() < minLoss ? m.loss() : minLoss, none || m.loss() > maxLoss ? m.loss() : maxLoss);
    }

    /** Mean wall time of a step, NaN before the first. */
    public double meanStepMs() {
        return steps == 0 ? Double.NaN : wallMs / steps;
    }
}
