package io.ouro.orchestrator.train;

import io.ouro.worker.model.StepReport;

/**
 * The figures of one step that the ranks add up in the all-reduce, next to the gradients: the target
 * tokens, the token-weighted loss, CE and exit probability per loop step, and the number of ranks whose
 * forward pass was non-finite. Token weighting makes the global figures means over the whole global batch.
 */
final class StepSums {

    private final int loopSteps;
    /** [tokens, loss, ce x T, exit x T, non-finite ranks], in float: the ring sums float buffers. */
    final float[] values;

    private StepSums(int loopSteps) {
        this.loopSteps = loopSteps;
        this.values = new float[3 + 2 * loopSteps];
    }

    /** This rank's contribution; {@code rep} null when its forward pass was non-finite (then it adds nothing). */
    static StepSums local(StepReport rep, int loopSteps) {
        StepSums s = new StepSums(loopSteps);
        if (rep == null) {
            s.values[2 + 2 * loopSteps] = 1;
            return s;
        }
        float w = rep.tokens();
        s.values[0] = w;
        s.values[1] = (float) (rep.loss() * w);
        for (int t = 0; t < loopSteps; t++) {
            s.values[2 + t] = (float) (rep.stepCe()[t] * w);
            s.values[2 + loopSteps + t] = (float) (rep.meanExit()[t] * w);
        }
        return s;
    }

    /** Nothing yet: to {@link #add} batches into. */
    static StepSums zero(int loopSteps) {
        return new StepSums(loopSteps);
    }

    void add(StepSums o) {
        for (int i = 0; i < values.length; i++) {
            values[i] += o.values[i];
        }
    }

    float tokens() {
        return values[0];
    }

    int nonFiniteRanks() {
        return Math.round(values[2 + 2 * loopSteps]);
    }

    double loss() {
        return tokens() > 0 ? values[1] / tokens() : Double.NaN;
    }

    double[] stepCe() {
        return means(2);
    }

    double[] meanExit() {
        return means(2 + loopSteps);
    }

    private double[] means(int from) {
        double[] out = new double[loopSteps];
        for (int t = 0; t < loopSteps; t++) {
            out[t] = tokens() > 0 ? values[from + t] / tokens() : Double.NaN;
        }
        return out;
    }
}
