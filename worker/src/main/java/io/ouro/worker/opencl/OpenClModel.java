package io.ouro.worker.opencl;

import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.model.DecayPolicy;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.NonFiniteException;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.OptimizerState;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.ParamSegments;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.model.TokenBatch;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.reference.LoopSchedule;

import java.util.function.Predicate;

/**
 * The LoopLM on an OpenCL device: {@link LoopSchedule} (the step, written once for every backend) over
 * {@link OpenClStepOps}, with parameters, gradients, Adam moments and activations resident on the device. Per
 * micro-batch only the token and target ids go in and the metrics (per-token losses, per-step sums) come out;
 * gradients come out when {@link #gradients()} is called for the all-reduce. The workspace is sized at construction
 * for micro-batches of {@code micro} sequences of {@code seqLen} tokens.
 */
public final class OpenClModel implements AutoCloseable {

    /** The largest activation buffer one model can have: a Java array, mirrored on the device. */
    public static final long MAX_BUFFER_FLOATS = Integer.MAX_VALUE - 8;

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final OpenClStepOps stepOps;
    private final OpenClOps ops;
    private final LoopSchedule schedule;
    private final int batch, seqLen;
    private final boolean training;
    private int validTokens;
    private long adamStep;

    /** One batch of {@code batch} sequences as one micro-batch, every activation kept (the parity tests' shape). */
    public OpenClModel(LoopConfig cfg, OpenCLDevice device, int batch, int seqLen, boolean keepLogits) {
        this(cfg, device, StepShape.whole(batch, seqLen), keepLogits);
    }

    /** Batches run as the shape says (micro-batches, recomputation, chunks, stash buffers). */
    public OpenClModel(LoopConfig cfg, OpenCLDevice device, StepShape shape, boolean keepLogits) {
        this(cfg, device, shape, keepLogits, true);
    }

    /**
     * @param training false for a forward-only model (evaluation): no gradient or Adam moment buffers on the device;
     *                 {@link #forward} and {@link #evaluate} work, anything that needs a gradient is an error
     */
    public OpenClModel(LoopConfig cfg, OpenCLDevice device, StepShape shape, boolean keepLogits, boolean training) {
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        this.batch = shape.batch();
        this.seqLen = shape.seqLen();
        this.training = training;
        this.stepOps = new OpenClStepOps(cfg, device, shape.micro(), seqLen, shape.bufferLimit());
        if (!training) {
            stepOps.forwardOnly();
        }
        try {
            this.schedule = new LoopSchedule(cfg, stepOps, shape.micro(), seqLen, shape.recompute(), shape.chunk(),
                    keepLogits);
        } catch (RuntimeException e) {
            stepOps.close();
            throw e;
        }
        this.ops = stepOps.device();
    }

    /**
     * The device buffers a model of this shape allocates for its activations (see {@link LoopSchedule.Plan} and
     * {@link OpenClStepOps#layout}); an IllegalArgumentException says what does not fit.
     *
     * @param cpu      a CPU device (which adds the GEMM's transposition scratch)
     * @param actLimit the device's largest buffer in floats
     */
    public static OpenClStepOps.BufferLayout activationBuffers(LoopConfig cfg, StepShape shape, boolean cpu,
                                                             long actLimit) {
        LoopSchedule.Plan plan = new LoopSchedule.Plan(cfg, shape.micro(), shape.seqLen(), shape.recompute(),
                shape.chunk(), false, (long) shape.micro() * cfg.heads() * shape.seqLen());
        long limit = shape.bufferLimit() > 0 ? Math.min(shape.bufferLimit(), actLimit) : actLimit;
        return OpenClStepOps.layout(cfg, plan.sizes(), plan.stash(), shape.micro() * shape.seqLen(), cpu, actLimit, limit);
    }

    /** Where this model's activations went. */
    public OpenClStepOps.BufferLayout activationBuffers() {
        return stepOps.buffers();
    }

    public ParamLayout layout() {
        return layout;
    }

    public OpenClOps ops() {
        return ops;
    }

    /** The ops the schedule runs on. */
    public OpenClStepOps stepOps() {
        return stepOps;
    }

    public LoopSchedule schedule() {
        return schedule;
    }

    /** Copies parameters to the device and clears the Adam moments. */
    public void setParameters(float[] params) {
        scatter(params, Buffer.PARAMS, Buffer.PARAMS2);
        stepOps.parametersChanged();
        if (!training) {
            return;
        }
        scatter(new float[params.length], Buffer.MOM1, Buffer.MOM1B);
        scatter(new float[params.length], Buffer.MOM2, Buffer.MOM2B);
        adamStep = 0;
    }

    /** Downloads Adam's moments and update count. */
    public OptimizerState optimizerState() {
        return new OptimizerState(adamStep, gather(Buffer.MOM1, Buffer.MOM1B), gather(Buffer.MOM2, Buffer.MOM2B));
    }

    /** Uploads Adam's moments and update count (from a checkpoint). */
    public void setOptimizerState(OptimizerState s) {
        if (s.m().length != layout.totalSize()) {
            throw new IllegalArgumentException("optimizer state holds " + s.m().length + " values, the model "
                    + layout.totalSize());
        }
        scatter(s.m(), Buffer.MOM1, Buffer.MOM1B);
        scatter(s.v(), Buffer.MOM2, Buffer.MOM2B);
        adamStep = s.step();
    }

    /** Downloads the parameters. */
    public float[] parameters() {
        return gather(Buffer.PARAMS, Buffer.PARAMS2);
    }

    /** Downloads the gradient buffer (for the all-reduce). */
    public float[] gradients() {
        return gather(Buffer.GRADS, Buffer.GRADS2);
    }

    /** Replaces the device gradients, e.g. with the all-reduced sum. */
    public void setGradients(float[] grads) {
        scatter(grads, Buffer.GRADS, Buffer.GRADS2);
    }

    // the flat host array <-> the device segments (first, second)
    private void scatter(float[] flat, Buffer first, Buffer second) {
        requireTraining(first);
        ParamSegments segs = stepOps.segments();
        for (int i = 0; i < segs.count(); i++) {
            Buffer b = i == 0 ? first : second;
            System.arraycopy(flat, (int) segs.start(i), ops.host(b), 0, (int) segs.size(i));
            ops.upload(b);
        }
    }

    private float[] gather(Buffer first, Buffer second) {
        requireTraining(first);
        ParamSegments segs = stepOps.segments();
        float[] flat = new float[layout.arraySize()];
        for (int i = 0; i < segs.count(); i++) {
            Buffer b = i == 0 ? first : second;
            ops.download(b);
            System.arraycopy(ops.read(b), 0, flat, (int) segs.start(i), (int) segs.size(i));
        }
        return flat;
    }

    // a forward-only model has parameters only
    private void requireTraining(Buffer b) {
        if (!training && b != Buffer.PARAMS) {
            throw new IllegalStateException("a forward-only model has no " + b + " buffer");
        }
    }

    public void zeroGradients() {
        stepOps.zeroGrads();
    }

    /** The (N,V) logits of step t from the last forward; needs keepLogits. */
    public float[] logits(int t) {
        return schedule.logits(t);
    }

    /**
     * The forward pass of the whole batch as one micro-batch (the workspace must hold it), keeping its activations
     * for {@link #backward()}.
     */
    public StepReport forward(int[] tokens, int[] targets, Objective objective) {
        validTokens = TokenBatch.validate(tokens, targets, batch, seqLen, cfg.vocab());
        double[] sums;
        try {
            sums = schedule.forward(tokens, targets, batch, objective, validTokens);
        } catch (NonFiniteException e) {
            throw new NonFiniteException(e.getMessage() + " on " + OpenClDevices.describe(ops.device()));
        }
        return LoopSchedule.report(sums, validTokens);
    }

    /** Adds the gradient of the last forward's objective into the device gradient buffer. */
    public void backward() {
        schedule.backward();
    }

    /** Forward and backward of the batch as micro-batches, the gradient accumulating on the device. */
    public StepReport forwardBackward(int[] tokens, int[] targets, Objective objective) {
        try {
            return schedule.run(tokens, targets, batch, objective, true);
        } catch (NonFiniteException e) {
            throw new NonFiniteException(e.getMessage() + " on " + OpenClDevices.describe(ops.device()));
        }
    }

    /** The batch's metrics without a backward pass (validation), as micro-batches. */
    public StepReport evaluate(int[] tokens, int[] targets, Objective objective) {
        return schedule.run(tokens, targets, batch, objective, false);
    }

    /** Global-norm clipping on the device; returns the norm before clipping (as GradClip does). */
    public double clipGradients(double maxNorm) {
        return schedule.clipGradients(maxNorm);
    }

    /** One AdamW update (beta1, beta2, eps, weight decay as given) of the tensors {@code trainable} accepts. */
    public void adamw(double lr, double beta1, double beta2, double eps, double weightDecay, DecayPolicy decay,
                      Predicate<TensorView> trainable) {
        adamStep++;
        double bc1 = 1 - Math.pow(beta1, adamStep);
        float sqrtBc2 = (float) Math.sqrt(1 - Math.pow(beta2, adamStep));
        for (TensorView t : layout.tensors()) {
            if (trainable.test(t)) {
                float keep = decay.decays(t) ? (float) (1 - lr * weightDecay) : 1f;
                stepOps.adamw(t, keep, (float) beta1, (float) beta2, (float) (lr / bc1), sqrtBc2, (float) eps);
            }
        }
    }

    @Override
    public void close() {
        stepOps.close();
    }
}
