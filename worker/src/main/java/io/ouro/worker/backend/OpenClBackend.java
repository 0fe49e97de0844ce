package io.ouro.worker.backend;

import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.model.TensorSource;
import io.ouro.worker.model.GradientReady;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParameterReadiness;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.opencl.DevicePeaks;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClModel;

import java.util.function.Predicate;

/** The OpenCL backend: {@link OpenClModel}, with parameters, gradients and optimizer state on the device. */
public final class OpenClBackend implements TrainingBackend {

    private final OpenClModel model;
    private final AdamWConfig adam;
    private final String description;

    public OpenClBackend(LoopConfig cfg, AdamWConfig adam, OpenCLDevice device, StepShape shape) {
        this(cfg, adam, device, shape, null);
    }

    /** @param optimizerRange the ZeRO-1 slice whose moments the device keeps (allocated at its size), null: all */
    public OpenClBackend(LoopConfig cfg, AdamWConfig adam, OpenCLDevice device, StepShape shape, long[] optimizerRange) {
        this.model = new OpenClModel(cfg, device, shape, false, true, optimizerRange);
        this.adam = adam;
        // the driver reads the MFU's peak off this (DevicePeaks.mfuPeakGflops)
        this.description = "OpenCL " + OpenClDevices.describe(device)
                + (shape.matmul() != MatmulPrecision.BF16_TENSOR ? ""
                : model.ops().usesTensorCores() ? ", " + DevicePeaks.ON_TENSOR_CORES
                : ", GEMM in fp32 (train.matmul bf16_tensor: no tensor cores here)");
    }

    public OpenClModel model() {
        return model;
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public long deviceMemoryBytes() {
        return model.ops().device().getGlobalMemSize();
    }

    @Override
    public ParamLayout layout() {
        return model.layout();
    }

    @Override
    public void setParameters(float[] params) {
        model.setParameters(params);
    }

    @Override
    public float[] parameters() {
        return model.parameters();
    }

    @Override
    public void setParameters(TensorSource src) {
        model.setParameters(src);
    }

    @Override
    public TensorSource parameterSource() {
        return model.parameterSource();
    }

    @Override
    public TensorSource momentSource(int which) {
        return model.momentSource(which);
    }

    @Override
    public long optimizerStep() {
        return model.optimizerStep();
    }

    @Override
    public void setOptimizerState(long step, TensorSource first, TensorSource second) {
        model.setOptimizerState(step, first, second);
    }

    @Override
    public StepReport forwardBackward(int[] tokens, int[] targets, Objective objective, ParameterReadiness params,
                                      GradientReady ready) {
        return model.forwardBackward(tokens, targets, objective, params, ready);
    }

    @Override
    public void readGradients(long from, float[] dst, int off, int len, float scale) {
        model.readGradients(from, dst, off, len, scale);
    }

    @Override
    public void writeGradients(long from, float[] src, int off, int len) {
        model.writeGradients(from, src, off, len);
    }

    @Override
    public void readParameters(long from, float[] dst, int off, int len) {
        model.readParameters(from, dst, off, len);
    }

    @Override
    public void writeParameters(long from, float[] src, int off, int len) {
        model.writeParameters(from, src, off, len);
    }

    @Override
    public void shardOptimizer(long from, long to) {
        model.shardOptimizer(from, to);
    }

    @Override
    public StepReport forward(int[] tokens, int[] targets, Objective objective) {
        return model.evaluate(tokens, targets, objective);
    }

    @Override
    public void zeroGradients() {
        model.zeroGradients();
    }

    @Override
    public float[] gradients() {
        return model.gradients();
    }

    @Override
    public void setGradients(float[] grads) {
        model.setGradients(grads);
    }

    @Override
    public double clipGradients(double maxNorm, double divisor) {
        return model.clipGradients(maxNorm, divisor);
    }

    @Override
    public void adamw(double lr, Predicate<TensorView> trainable) {
        model.adamw(lr, adam.beta1(), adam.beta2(), adam.eps(), adam.weightDecay(), adam.decay(), trainable);
    }

    @Override
    public io.ouro.worker.model.OptimizerState optimizerState() {
        return model.optimizerState();
    }

    @Override
    public void setOptimizerState(io.ouro.worker.model.OptimizerState state) {
        model.setOptimizerState(state);
    }

    @Override
    public void close() {
        model.close();
    }
}
