package io.ouro.worker.model;

/** AdamW's state: the number of updates made and both moments, laid out like the parameters. */
public record OptimizerState(long step, float[] m, float[] v) {

    public OptimizerState {
        if (step < 0) {
            throw new IllegalArgumentException("OptimizerState.step: expected >= 0, got " + step);
        }
        if (m.length != v.length) {
            throw new IllegalArgumentException("OptimizerState: moments of different lengths " + m.length + " and " + v.length);
        }
    }
}
