package io.ouro.orchestrator.train;

import java.io.Serializable;
import java.util.Locale;

/**
 * One global step as rank 0 saw it after the all-reduce: the objective over the whole global batch,
 * per-loop-step cross-entropy, the mean exit distribution, the gradient norm before clipping, the
 * learning rate, where the time went on rank 0 (compute, all-reduce, waiting for data, the rest), why the
 * update was skipped (null when it was applied) and anything else the step has to say (null when nothing).
 */
public record StepMetrics(long step, double loss, double[] stepCe, double[] meanExit, double gradNorm, double lr,
                          long tokens, double wallMs, double computeMs, double commMs, double dataWaitMs,
                          String skipped, String note) implements Serializable {

    /** Time that is neither compute nor all-reduce: data wait plus orchestration. */
    public double overheadMs() {
        return Math.max(0, wallMs - computeMs - commMs);
    }

    public String line(String stage, double peakGflops, double flopsPerToken) {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "stage %s step %d loss %.4f ce [", stage, step, loss));
        for (int t = 0; t < stepCe.length; t++) {
            b.append(t == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.3f", stepCe[t]));
        }
        b.append("] exit [");
        for (int t = 0; t < meanExit.length; t++) {
            b.append(t == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.2f", meanExit[t]));
        }
        double tokS = tokens / (wallMs / 1e3);
        b.append(String.format(Locale.ROOT, "] gnorm %.3f lr %.2e %.0f tok/s", gradNorm, lr, tokS));
        if (peakGflops > 0) {
            b.append(String.format(Locale.ROOT, " MFU %.1f%%", 100 * tokS * flopsPerToken / 1e9 / peakGflops));
        }
        if (skipped != null) {
            b.append(" SKIPPED (").append(skipped).append(')');
        }
        if (note != null) {
            b.append(" (").append(note).append(')');
        }
        b.append(String.format(Locale.ROOT, " | %.0f ms: compute %.0f, all-reduce %.0f, data wait %.1f, other %.1f",
                wallMs, computeMs, commMs, dataWaitMs, Math.max(0, overheadMs() - dataWaitMs)));
        return b.toString();
    }
}
