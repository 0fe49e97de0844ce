package io.ouro.orchestrator.train;

import java.util.ArrayDeque;
import java.util.Locale;

/**
 * Decides whether a step's update is skipped: a non-finite loss or gradient norm always is; a loss or
 * gradient norm more than {@code sigma} standard deviations above the mean of the last {@code window}
 * accepted steps is a spike (once {@code minHistory} steps are known). Every rank feeds it the same
 * all-reduced figures, so every rank decides alike. Its history is part of the checkpoint, so a resumed
 * run decides as the uninterrupted one would.
 */
final class SpikeGuard {

    private final int window, minHistory;
    private final double sigma;
    private final ArrayDeque<double[]> history = new ArrayDeque<>();
    String stage;

    SpikeGuard(int window, int minHistory, double sigma, String stage) {
        this.window = window;
        this.minHistory = minHistory;
        this.sigma = sigma;
        this.stage = stage;
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
            if (why != null) {
                return why;
            }
        }
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
        StringBuilder b = new StringBuilder(stage == null ? "" : stage).append('|');
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
        int bar = text.indexOf('|');
        stage = text.substring(0, bar);
        for (String e : text.substring(bar + 1).split(";")) {
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
            stage = name;
        }
    }
}
