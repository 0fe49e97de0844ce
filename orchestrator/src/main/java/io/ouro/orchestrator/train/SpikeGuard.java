package io.ouro.orchestrator.train;

import java.util.ArrayDeque;
import java.util.Locale;

/**
 * Decides whether a step's update is skipped: a non-finite loss or gradient norm always is; a loss or
 * gradient norm more than {@code sigma} standard deviations above the mean of the last {@code window}
 * accepted steps is a spike (once {@code minHistory} steps are known). After {@code maxConsecutive} spikes
 * in a row the next one is accepted and the history restarts from it: skipped updates leave the weights, and
 * so the gradient norm, where they were, and a guard that only compared against the old level would skip
 * every later step (clipping still bounds that update). Every rank feeds it the same
 * all-reduced figures, so every rank decides alike. Its history is part of the checkpoint, so a resumed
 * run decides as the uninterrupted one would.
 */
final class SpikeGuard {

    private final int window, minHistory, maxConsecutive;
    private final double sigma;
    private final ArrayDeque<double[]> history = new ArrayDeque<>();
    private int consecutive;
    private String note;
    String stage;

    SpikeGuard(int window, int minHistory, double sigma, int maxConsecutive, String stage) {
        this.window = window;
        this.minHistory = minHistory;
        this.sigma = sigma;
        this.maxConsecutive = maxConsecutive;
        this.stage = stage;
    }

    /** What the last {@link #check} did besides accepting or skipping, once; null when nothing. */
    String takeNote() {
        String n = note;
        note = null;
        return n;
    }

    /** Null to accept the step, else why it is skipped. Accepted steps join the history. */
    String check(double loss, double gradNorm) {
        if (!Double.isFinite(loss) || !Double.isFinite(gradNorm)) {
            return String.format(Locale.ROOT, "non-finite (loss %s, grad norm %s)", loss, gradNorm);
        }
        if (sigma > 0 && history.size() >= minHistory) {
            String why = spike("loss", loss, 0);
            if (why == null) {
                why = spike("grad norm", gradNorm, 1);
            }
            if (why != null && consecutive < maxConsecutive) {
                consecutive++;
                return why;
            }
            if (why != null) {
                note = "accepted after " + consecutive + " consecutive spikes: a new level, the history restarts ("
                        + why + ")";
                history.clear();
            }
        }
        consecutive = 0;
        history.addLast(new double[] {loss, gradNorm});
        while (history.size() > window) {
            history.removeFirst();
        }
        return null;
    }

    private String spike(String what, double x, int k) {
        double mean = 0, sq = 0;
        for (double[] h : history) {
            mean += h[k];
        }
        mean /= history.size();
        for (double[] h : history) {
            sq += (h[k] - mean) * (h[k] - mean);
        }
        double std = Math.sqrt(sq / history.size());
        double limit = mean + sigma * Math.max(std, 1e-3 * Math.abs(mean));
        return x > limit ? String.format(Locale.ROOT, "%s spike: %.4g > %.4g (mean %.4g + %s sd over %d steps)", what, x,
                limit, mean, sigma, history.size()) : null;
    }

    /** The history as text, for the checkpoint. */
    String save() {
        StringBuilder b = new StringBuilder(stage == null ? "" : stage).append('|').append(consecutive).append('|');
        for (double[] h : history) {
            b.append(Double.toHexString(h[0])).append(':').append(Double.toHexString(h[1])).append(';');
        }
        return b.toString();
    }

    void restore(String text) {
        history.clear();
        if (text == null || text.isEmpty()) {
            return;
        }
        int bar = text.indexOf('|'), bar2 = text.indexOf('|', bar + 1);
        stage = text.substring(0, bar);
        consecutive = Integer.parseInt(text.substring(bar + 1, bar2));
        for (String e : text.substring(bar2 + 1).split(";")) {
            if (!e.isEmpty()) {
                String[] p = e.split(":");
                history.addLast(new double[] {Double.parseDouble(p[0]), Double.parseDouble(p[1])});
            }
        }
    }

    /** A new stage starts with no history (loss levels change with sequence length, T, data). */
    void enterStage(String name) {
        if (!name.equals(stage)) {
            history.clear();
            consecutive = 0;
            stage = name;
        }
    }
}
