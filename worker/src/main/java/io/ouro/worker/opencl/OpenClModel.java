package io.ouro.worker.opencl;

import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.model.FlatTensors;
import io.ouro.worker.model.TensorSource;
import io.ouro.worker.model.AdamW;
import io.ouro.worker.model.DecayPolicy;
import io.ouro.worker.model.GradientReady;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.NonFiniteException;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParameterReadiness;
import io.ouro.worker.model.OptimizerState;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.ParamSegments;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.model.TokenBatch;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.step.LoopSchedule;
import io.ouro.worker.step.StepWorkspace;

import java.util.function.Predicate;

/**
 * The LoopLM on an OpenCL device: {@link LoopSchedule} (the step, written once for every backend) over
 * {@link OpenClStepOps}, with parameters, gradients, Adam moments and activations resident on the device. Per
 * micro-batch only the token and target ids go in and the metrics (per-token losses, per-step sums) come out;
 * gradients come out when {@link #gradients()} is called for the all-reduce. The workspace is sized at construction
 * for micro-batches of {@code micro} sequences of {@code seqLen} tokens.
 */
public final class OpenClModel implements AutoCloseable {

    /** The largest device buffer (parameter segment, stash buffer) in floats: see {@link HostArrays#MAX_FLOATS}. */
    public static final long MAX_BUFFER_FLOATS = HostArrays.MAX_FLOATS;

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final OpenClStepOps stepOps;
    private final OpenClOps ops;
    private final LoopSchedule schedule;
    private final int batch, seqLen;
    private final boolean training;
    private int validTokens;
    private long adamStep;
    /** The range of the flat layout whose Adam moments this model keeps (all of it unless sharded, ZeRO-1). */
    private long momFrom, momTo;

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
        this(cfg, device, shape, keepLogits, training, null);
    }

    /**
     * @param optimizerRange [from, to) of the flat layout whose Adam moments this model keeps (ZeRO-1: this rank's
     *                       slice, the moment buffers allocated at its size), null: all of them
     */
    public OpenClModel(LoopConfig cfg, OpenCLDevice device, StepShape shape, boolean keepLogits, boolean training,
                       long[] optimizerRange) {
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        this.batch = shape.batch();
        this.seqLen = shape.seqLen();
        this.training = training;
        this.stepOps = new OpenClStepOps(cfg, device, shape.micro(), seqLen, shape.bufferLimit())
                .matmul(shape.matmul()).activationCopyRows(OpenClStepOps.copyRowsFor(shape));
        if (!training) {
            stepOps.forwardOnly();
        }
        if (optimizerRange != null) {
            stepOps.momentRange(optimizerRange[0], optimizerRange[1]);
        }
        try {
            this.schedule = new LoopSchedule(cfg, stepOps, shape.micro(), seqLen, shape.recompute(), shape.chunk(),
                    keepLogits, shape.bf16Stash(), training);
        } catch (RuntimeException e) {
            stepOps.close();
            throw e;
        }
        this.ops = stepOps.device();
        this.momFrom = optimizerRange == null ? 0 : optimizerRange[0];
        this.momTo = optimizerRange == null ? layout.totalSize() : optimizerRange[1];
    }

    /**
     * The device buffers a model of this shape allocates for its activations (see {@link StepWorkspace.Plan} and
     * {@link OpenClStepOps#layout}); an IllegalArgumentException says what does not fit.
     *
     * @param cpu      a CPU device (which adds the GEMM's transposition scratch)
     * @param actLimit the device's largest buffer in floats
     */
    public static OpenClStepOps.BufferLayout activationBuffers(LoopConfig cfg, StepShape shape, boolean cpu,
                                                             long actLimit) {
        StepWorkspace.Plan plan = new StepWorkspace.Plan(cfg, shape.micro(), shape.seqLen(), shape.recompute(),
                shape.chunk(), false, (long) shape.micro() * cfg.heads() * shape.seqLen());
        long limit = shape.bufferLimit() > 0 ? Math.min(shape.bufferLimit(), actLimit) : actLimit;
        return OpenClStepOps.layout(cfg, plan.sizes(), plan.stash(), shape.micro() * shape.seqLen(), cpu, actLimit, limit,
                shape.bf16Stash(), OpenClStepOps.copyRowsFor(shape));
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
        if (params.length != layout.totalSize()) {
            throw new IllegalArgumentException("parameters: expected " + layout.totalSize() + " values, got " + params.length);
        }
        setParameters(FlatTensors.source(params));
    }

    /** Copies parameters to the device, tensor by tensor into each segment's buffer, and clears the Adam moments. */
    public void setParameters(TensorSource src) {
        ParamSegments segs = stepOps.segments();
        for (int i = 0; i < segs.count(); i++) {
            Buffer b = OpenClOps.params(i);
            float[] host = ops.host(b);
            for (TensorView t : layout.tensors()) {
                if (segs.segment(t) == i) {
                    src.read(t, 0, host, segs.local(t), t.len());
                }
            }
            ops.upload(b);
        }
        stepOps.parametersChanged();
        if (!training) {
            return;
        }
        zeroMoments();
    }

    // Adam's moments of every segment zeroed on the device, the update count reset
    private void zeroMoments() {
        for (int seg = 0; seg < stepOps.segments().count(); seg++) {
            for (int which = 0; which < 2; which++) {
                Buffer b = OpenClOps.moments(which, seg);
                java.util.Arrays.fill(ops.host(b), 0, (int) ops.size(b), 0f);
                ops.upload(b);
            }
        }
        adamStep = 0;
    }

    /**
     * Keeps Adam's moments for parameters [from, to) of the flat layout only (ZeRO-1: this rank's slice), zeroed;
     * {@link #adamw} then updates only those parameters. Call before setting the state.
     */
    public void shardOptimizer(long from, long to) {
        requireTraining(Buffer.MOM1);
        if (from < 0 || to < from || to > layout.totalSize()) {
            throw new IllegalArgumentException("optimizer range [" + from + ", " + to + ") outside the "
                    + layout.totalSize() + " parameters");
        }
        ParamSegments segs = stepOps.segments();
        if (from == momFrom && to == momTo) {
            // the moment buffers already hold this range (allocated at its size): zeroed, not reallocated
            zeroMoments();
            return;
        }
        int[] sizes = new int[segs.count()];
        for (int i = 0; i < sizes.length; i++) {
            sizes[i] = (int) Math.max(0, Math.min(to, segs.start(i) + segs.size(i)) - Math.max(from, segs.start(i)));
        }
        ops.resizeMoments(sizes);
        momFrom = from;
        momTo = to;
        adamStep = 0;
    }

    /** The parameters, read from the host copy of their buffer (downloaded once while the device's is newer). */
    public TensorSource parameterSource() {
        ParamSegments segs = stepOps.segments();
        return (t, start, dst, off, len) -> {
            Buffer b = OpenClOps.params(segs.segment(t));
            if (ops.residency().side(b) == Residency.Side.DEVICE) {
                ops.download(b);
            }
            System.arraycopy(ops.read(b), segs.local(t) + Math.toIntExact(start), dst, off, len);
        };
    }

    /** Adam moment {@code which} (0, 1) over the kept range, read like {@link #parameterSource}. */
    public TensorSource momentSource(int which) {
        requireTraining(Buffer.MOM1);
        ParamSegments segs = stepOps.segments();
        return (t, start, dst, off, len) -> {
            int seg = segs.segment(t);
            Buffer b = OpenClOps.moments(which, seg);
            int at = AdamW.momentIndex(t, start, len, momFrom, momTo) + (int) (momFrom - momentStart(seg));
            if (ops.residency().side(b) == Residency.Side.DEVICE) {
                ops.download(b);
            }
            System.arraycopy(ops.read(b), at, dst, off, len);
        };
    }

    public long optimizerStep() {
        return adamStep;
    }

    /** Restores the update count and the moments of the kept range, tensor piece by tensor piece. */
    public void setOptimizerState(long step, TensorSource first, TensorSource second) {
        requireTraining(Buffer.MOM1);
        ParamSegments segs = stepOps.segments();
        for (AdamW.Slice sl : AdamW.slices(layout, momFrom, momTo, t -> true)) {
            int seg = segs.segment(sl.tensor());
            int at = (int) (sl.at() - momentStart(seg));
            long start = sl.at() - sl.tensor().offset();
            first.read(sl.tensor(), start, ops.host(OpenClOps.moments(0, seg)), at, sl.len());
            second.read(sl.tensor(), start, ops.host(OpenClOps.moments(1, seg)), at, sl.len());
        }
        for (int seg = 0; seg < segs.count(); seg++) {
            ops.upload(OpenClOps.moments(0, seg));
            ops.upload(OpenClOps.moments(1, seg));
        }
        adamStep = step;
    }

    /** Downloads Adam's moments and update count, laid out like the parameters (zero outside a sharded range). */
    public OptimizerState optimizerState() {
        return new OptimizerState(adamStep, gatherMoments(0), gatherMoments(1));
    }

    /** Uploads Adam's moments (laid out like the parameters; the kept range is taken) and update count. */
    public void setOptimizerState(OptimizerState s) {
        if (s.m().length != layout.totalSize()) {
            throw new IllegalArgumentException("optimizer state holds " + s.m().length + " values, the model "
                    + layout.totalSize());
        }
        setOptimizerState(s.step(), FlatTensors.source(s.m()), FlatTensors.source(s.v()));
    }

    // the moments kept for segment i: flat [momentStart(i), + size) at offset 0 of its buffer
    private long momentStart(int i) {
        return Math.max(momFrom, stepOps.segments().start(i));
    }

    private int momentSize(int i) {
        ParamSegments segs = stepOps.segments();
        return (int) Math.max(0, Math.min(momTo, segs.start(i) + segs.size(i)) - momentStart(i));
    }

    private float[] gatherMoments(int which) {
        requireTraining(Buffer.MOM1);
        float[] flat = new float[layout.arraySize()];
        for (int i = 0; i < stepOps.segments().count(); i++) {
            Buffer b = OpenClOps.moments(which, i);
            ops.download(b);
            System.arraycopy(ops.read(b), 0, flat, (int) momentStart(i), momentSize(i));
        }
        return flat;
    }

    /** {@code scale} times gradients [from, from + len) of the flat layout into {@code dst[off, off + len)}. */
    public void readGradients(long from, float[] dst, int off, int len, float scale) {
        requireTraining(Buffer.GRADS);
        stepOps.readRange(true, from, dst, off, len, scale);
    }

    /** Writes {@code src[off, off + len)} over gradients [from, from + len). */
    public void writeGradients(long from, float[] src, int off, int len) {
        requireTraining(Buffer.GRADS);
        stepOps.writeRange(true, from, src, off, len);
    }

    /** Parameters [from, from + len) of the flat layout into {@code dst[off, off + len)}. */
    public void readParameters(long from, float[] dst, int off, int len) {
        stepOps.readRange(false, from, dst, off, len, 1f);
    }

    /** Writes {@code src[off, off + len)} over parameters [from, from + len) (the moments stay). */
    public void writeParameters(long from, float[] src, int off, int len) {
        stepOps.writeRange(false, from, src, off, len);
    }

    /** Downloads the parameters. */
    public float[] parameters() {
        return gather(Buffer.Kind.PARAMS);
    }

    /** Downloads the gradient buffer (for the all-reduce). */
    public float[] gradients() {
        return gather(Buffer.Kind.GRADS);
    }

    /** Replaces the device gradients, e.g. with the all-reduced sum. */
    public void setGradients(float[] grads) {
        scatter(grads, Buffer.Kind.GRADS);
    }

    // the flat host array <-> the device segments of that kind
    private void scatter(float[] flat, Buffer.Kind kind) {
        requireTraining(new Buffer(kind, 0));
        ParamSegments segs = stepOps.segments();
        for (int i = 0; i < segs.count(); i++) {
            Buffer b = new Buffer(kind, i);
            System.arraycopy(flat, (int) segs.start(i), ops.host(b), 0, (int) segs.size(i));
            ops.upload(b);
        }
    }

    private float[] gather(Buffer.Kind kind) {
        requireTraining(new Buffer(kind, 0));
        ParamSegments segs = stepOps.segments();
        float[] flat = new float[layout.arraySize()];
        for (int i = 0; i < segs.count(); i++) {
            Buffer b = new Buffer(kind, i);
            ops.download(b);
            System.arraycopy(ops.read(b), 0, flat, (int) segs.start(i), (int) segs.size(i));
        }
        return flat;
    }

    // a forward-only model has parameters only
    private void requireTraining(Buffer b) {
        if (!training && b.kind() != Buffer.Kind.PARAMS) {
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
        return forwardBackward(tokens, targets, objective, GradientReady.NONE);
    }

    /** The same, telling {@code ready} as each gradient group is final (see {@link LoopSchedule#backward(GradientReady)}). */
    public StepReport forwardBackward(int[] tokens, int[] targets, Objective objective, GradientReady ready) {
        return forwardBackward(tokens, targets, objective, ParameterReadiness.NONE, ready);
    }

    /**
     * The same, asking {@code params} before the forward first reads each group of parameters: its implementation
     * writes a group that is still arriving ({@link #writeParameters}: a range write through the exchange buffer,
     * enqueued before any kernel that reads the range) on this thread, the one that launches the kernels.
     */
    public StepReport forwardBackward(int[] tokens, int[] targets, Objective objective, ParameterReadiness params,
                                      GradientReady ready) {
        try {
            return schedule.run(tokens, targets, batch, objective, true, params, ready);
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
        return schedule.clipGradients(maxNorm, 1);
    }

    /** The gradient divided by {@code divisor}, clipped (see {@link LoopSchedule#clipGradients(double, double)}). */
    public double clipGradients(double maxNorm, double divisor) {
        return schedule.clipGradients(maxNorm, divisor);
    }

    /** One AdamW update (beta1, beta2, eps, weight decay as given) of the tensors {@code trainable} accepts. */
    public void adamw(double lr, double beta1, double beta2, double eps, double weightDecay, DecayPolicy decay,
                      Predicate<TensorView> trainable) {
        AdamW.Update u = AdamW.Update.of(adamStep + 1, lr, beta1, beta2, eps, weightDecay);
        adamStep++;
        ParamSegments segs = stepOps.segments();
        for (AdamW.Slice sl : AdamW.slices(layout, momFrom, momTo, trainable)) {
            int seg = segs.segment(sl.tensor());
            stepOps.adamw(seg, (int) (sl.at() - segs.start(seg)), (int) (sl.at() - momentStart(seg)), sl.len(),
                    u.keep(sl.tensor(), decay), u.beta1(), u.beta2(), u.stepSize(), u.sqrtBc2(), u.eps());
        }
    }

    @Override
    public void close() {
        stepOps.close();
    }
}
