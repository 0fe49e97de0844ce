package io.ouro.worker.backend;

import io.ouro.worker.model.Objective;
import io.ouro.worker.model.OptimizerState;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.TensorView;

import java.util.function.Predicate;

/**
 * One worker's model and optimizer on one device, for a fixed (batch, seqLen), run as micro-batches. A training
 * step is {@code zeroGradients, forwardBackward, [gradients -> all-reduce -> setGradients], clipGradients,
 * adamw}. Implementations: {@link JavaBackend} (the plain-Java reference) and {@link OpenClBackend}
 * (Aparapi kernels, state resident on the device); {@link Backends#open} picks one from the config.
 */
public interface TrainingBackend extends AutoCloseable {

    /** What runs the model, e.g. the OpenCL device's name and version. */
    String describe();

    ParamLayout layout();

    /** The device's memory in bytes, or 0 where the backend has no device of its own (the Java backend). */
    default long deviceMemoryBytes() {
        return 0;
    }

    void setParameters(float[] params);

    float[] parameters();

    /**
     * Forward and backward of the batch, micro-batch by micro-batch, adding its gradient (normalised by the batch's
     * tokens with a target) into the backend's.
     */
    StepReport forwardBackward(int[] tokens, int[] targets, Objective objective);

    /** The batch's metrics without a backward pass (validation). */
    StepReport forward(int[] tokens, int[] targets, Objective objective);

    void zeroGradients();

    float[] gradients();

    void setGradients(float[] grads);

    /** Global-norm clipping; returns the norm before clipping. */
    double clipGradients(double maxNorm);

    void adamw(double lr, Predicate<TensorView> trainable);

    /** A copy of the optimizer's state (update count and moments), for checkpoints. */
    OptimizerState optimizerState();

    /** Restores the optimizer's state; call after {@link #setParameters}, which clears it. */
    void setOptimizerState(OptimizerState state);

    @Override
    void close();
}
