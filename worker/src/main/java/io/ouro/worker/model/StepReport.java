package io.ouro.worker.model;

/**
 * What one forward pass measured: the objective's value, the mean next-token cross-entropy of each
 * recurrent step, and the mean exit distribution, all over the {@code tokens} positions with a target.
 */
public record StepReport(double loss, double[] stepCe, double[] meanExit, int tokens) {

    public StepReport {
        stepCe = stepCe.clone();
        meanExit = meanExit.clone();
    }

    @Override
    public double[] stepCe() {
        return stepCe.clone();
    }

    @Override
    public double[] meanExit() {
        return meanExit.clone();
    }
}
