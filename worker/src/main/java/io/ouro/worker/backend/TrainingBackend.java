package io.ouro.worker.backend;

import io.ouro.worker.model.TensorSource;
import io.ouro.worker.model.GradientReady;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParameterReadiness;
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

    /**
     * Sets the parameters from a source, tensor by tensor (no host array larger than a device buffer: models past
     * 2^31 parameters), and clears the optimizer's state.
     */
    void setParameters(TensorSource params);

    /** For models that fit one Java array; {@link #parameterSource} for any size. */
    float[] parameters();

    /** The parameters, read tensor range by tensor range (checkpoints, moving the state to a new backend). */
    TensorSource parameterSource();

    /**
     * Adam moment {@code which} (0: first, 1: second) over the range this backend keeps ({@link #shardOptimizer});
     * reading outside it is an error.
     */
    TensorSource momentSource(int which);

    /** The number of AdamW updates made. */
    long optimizerStep();

    /** Restores the update count and the moments of the kept range, read tensor piece by tensor piece. */
    void setOptimizerState(long step, TensorSource first, TensorSource second);

    /**
     * Forward and backward of the batch, micro-batch by micro-batch, adding its gradient (normalised by the batch's
     * tokens with a target) into the backend's.
     */
    default StepReport forwardBackward(int[] tokens, int[] targets, Objective objective) {
        return forwardBackward(tokens, targets, objective, GradientReady.NONE);
    }

    /**
     * The same, telling {@code ready} during the last micro-batch's backward as each group of
     * {@link ParamLayout#gradientGroups()} has its final gradient, so that it can be read out
     * ({@link #readGradients}) and exchanged while the backward goes on.
     */
    default StepReport forwardBackward(int[] tokens, int[] targets, Objective objective, GradientReady ready) {
        return forwardBackward(tokens, targets, objective, ParameterReadiness.NONE, ready);
    }

    /**
     * The same, asking {@code params} before the forward first reads each group of parameters (see
     * {@link ParameterReadiness}): ZeRO-1's all-gather of the last update overlaps this forward, and the wait for a
     * group, and its write into the backend ({@link #writeParameters}), happen inside that call, on the thread that
     * runs the step's ops.
     */
    StepReport forwardBackward(int[] tokens, int[] targets, Objective objective, ParameterReadiness params,
                               GradientReady ready);

    /** The batch's metrics without a backward pass (validation). */
    StepReport forward(int[] tokens, int[] targets, Objective objective);

    void zeroGradients();

    float[] gradients();

    void setGradients(float[] grads);

    /** {@code scale} times gradients [from, from + len) of the flat layout into {@code dst[off, off + len)}. */
    void readGradients(long from, float[] dst, int off, int len, float scale);

    /** Writes {@code src[off, off + len)} over gradients [from, from + len). */
    void writeGradients(long from, float[] src, int off, int len);

    /** Parameters [from, from + len) of the flat layout into {@code dst[off, off + len)}. */
    void readParameters(long from, float[] dst, int off, int len);

    /** Writes {@code src[off, off + len)} over parameters [from, from + len); the optimizer's state stays. */
    void writeParameters(long from, float[] src, int off, int len);

    /** Global-norm clipping; returns the norm before clipping. */
    default double clipGradients(double maxNorm) {
        return clipGradients(maxNorm, 1);
    }

    /**
     * Divides the gradient by {@code divisor} (the data-parallel step: the global batch's tokens, making the
     * all-reduced token-weighted sum the mean), then clips it to the global norm {@code maxNorm}; returns the norm
     * before clipping.
     */
    double clipGradients(double maxNorm, double divisor);

    /**
     * ZeRO-1: from now on keep the optimizer's moments for parameters [from, to) of the flat layout only, and let
     * {@link #adamw} update only those (the other ranks update the rest). Clears the optimizer's state: call before
     * {@link #setOptimizerState}. {@link #optimizerState} then holds zeros outside the range.
     */
    void shardOptimizer(long from, long to);

    void adamw(double lr, Predicate<TensorView> trainable);

    /** A copy of the optimizer's state (update count and moments), for checkpoints. */
    OptimizerState optimizerState();

    /** Restores the optimizer's state; call after {@link #setParameters}, which clears it. */
    void setOptimizerState(OptimizerState state);

    @Override
    void close();
}
