package io.ouro.worker.backend;

import io.ouro.worker.model.AdamW;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.FlatTensors;
import io.ouro.worker.model.TensorSource;
import io.ouro.worker.model.GradientReady;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParameterReadiness;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.step.LoopSchedule;
import io.ouro.worker.reference.ReferenceModel;
import io.ouro.worker.util.Parallel;

import java.util.Arrays;
import java.util.function.Predicate;

/** The reference backend: {@link ReferenceModel} and {@link AdamW} on Java arrays. */
public final class JavaBackend implements TrainingBackend {

    private final ReferenceModel model;
    private final LoopSchedule schedule;
    private final AdamWConfig adam;
    private AdamW optimizer;
    private final int batch;
    private final float[] params, grads;

    public JavaBackend(LoopConfig cfg, AdamWConfig adam, StepShape shape) {
        this.model = new ReferenceModel(cfg);
        this.schedule = model.schedule(shape);
        this.adam = adam;
        this.optimizer = adam.create(model.layout());
        this.batch = shape.batch();
        this.params = new float[model.layout().arraySize()];
        this.grads = new float[params.length];
        model.bind(params, grads);
    }

    @Override
    public String describe() {
        return "java reference backend (" + Parallel.threads() + " threads)";
    }

    @Override
    public ParamLayout layout() {
        return model.layout();
    }

    @Override
    public void setParameters(float[] p) {
        System.arraycopy(p, 0, params, 0, params.length);
        optimizer = adam.create(model.layout(), optimizer.from(), optimizer.to());
    }

    @Override
    public float[] parameters() {
        return params.clone();
    }

    @Override
    public void setParameters(TensorSource src) {
        for (TensorView t : model.layout().tensors()) {
            src.read(t, 0, params, t.off(), t.len());
        }
        optimizer = adam.create(model.layout(), optimizer.from(), optimizer.to());
    }

    @Override
    public TensorSource parameterSource() {
        return FlatTensors.source(params);
    }

    @Override
    public TensorSource momentSource(int which) {
        return optimizer.moment(which);
    }

    @Override
    public long optimizerStep() {
        return optimizer.stepCount();
    }

    @Override
    public void setOptimizerState(long step, TensorSource first, TensorSource second) {
        optimizer.restore(step, first, second);
    }

    @Override
    public StepReport forwardBackward(int[] tokens, int[] targets, Objective objective, ParameterReadiness params,
                                      GradientReady ready) {
        return schedule.run(tokens, targets, batch, objective, true, params, ready);
    }

    @Override
    public void readGradients(long from, float[] dst, int off, int len, float scale) {
        for (int i = 0; i < len; i++) {
            dst[off + i] = scale * grads[(int) from + i];
        }
    }

    @Override
    public void writeGradients(long from, float[] src, int off, int len) {
        System.arraycopy(src, off, grads, (int) from, len);
    }

    @Override
    public void readParameters(long from, float[] dst, int off, int len) {
        System.arraycopy(params, (int) from, dst, off, len);
    }

    @Override
    public void writeParameters(long from, float[] src, int off, int len) {
        System.arraycopy(src, off, params, (int) from, len);
    }

    @Override
    public void shardOptimizer(long from, long to) {
        optimizer = adam.create(model.layout(), from, to);
    }

    @Override
    public StepReport forward(int[] tokens, int[] targets, Objective objective) {
        return schedule.run(tokens, targets, batch, objective, false);
    }

    @Override
    public void zeroGradients() {
        Arrays.fill(grads, 0f);
    }

    @Override
    public float[] gradients() {
        return grads.clone();
    }

    @Override
    public void setGradients(float[] g) {
        System.arraycopy(g, 0, grads, 0, grads.length);
    }

    @Override
    public double clipGradients(double maxNorm, double divisor) {
        return schedule.clipGradients(maxNorm, divisor);
    }

    @Override
    public void adamw(double lr, Predicate<TensorView> trainable) {
        optimizer.step(params, grads, lr, trainable);
    }

    @Override
    public io.ouro.worker.model.OptimizerState optimizerState() {
        return optimizer.state();
    }

    @Override
    public void setOptimizerState(io.ouro.worker.model.OptimizerState state) {
        optimizer.restore(state);
    }

    @Override
    public void close() {
        // nothing held outside the heap
    }
}
