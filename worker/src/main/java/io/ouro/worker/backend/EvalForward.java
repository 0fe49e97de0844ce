package io.ouro.worker.backend;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.TokenBatch;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.reference.RowOps;
import io.ouro.worker.step.LoopSchedule;
import io.ouro.worker.reference.ReferenceModel;

/**
 * A forward-only model for evaluation on the backend a device spec names: {@link LoopSchedule}'s forward over the
 * Java ops or over a forward-only {@link OpenClModel} (no gradient and no optimizer memory on either), giving every
 * row's cross-entropy and exit-gate lambda per loop step. Batches of at most {@code batch} sequences of
 * {@code seqLen} tokens, one micro-batch each.
 */
public final class EvalForward implements AutoCloseable {

    /** Per-row figures of one batch, (T, N) with row n = b * seqLen + s. */
    public record Output(float[] ce, float[] lambda) {
    }

    private final LoopConfig cfg;
    private final LoopSchedule schedule;
    private final OpenClModel cl;
    private final int batch, seqLen;
    private final String describe;

    public EvalForward(String device, LoopConfig cfg, float[] params, int batch, int seqLen) {
        this(device, cfg, params, batch, seqLen, false);
    }

    /** With {@code keepLogits}, every step's logits of the last forward are kept for {@link #logits(int)}. */
    public EvalForward(String device, LoopConfig cfg, float[] params, int batch, int seqLen, boolean keepLogits) {
        this.cfg = cfg;
        this.batch = batch;
        this.seqLen = seqLen;
        DeviceSpec spec = DeviceSpec.parse(device);
        if (spec.kind() == DeviceSpec.Kind.JAVA) {
            ReferenceModel m = new ReferenceModel(cfg);
            m.bind(params, null);
            this.schedule = m.forwardSchedule(StepShape.whole(batch, seqLen), keepLogits);
            this.cl = null;
            this.describe = "java";
        } else {
            var dev = OpenClDevices.select(spec);
            this.cl = new OpenClModel(cfg, dev, StepShape.whole(batch, seqLen), keepLogits, false);
            cl.setParameters(params);
            this.schedule = cl.schedule();
            this.describe = OpenClDevices.describe(dev) + ", forward only";
        }
    }

    public String describe() {
        return describe;
    }

    /** Bytes the OpenCL model holds on its device (0 on the Java backend). */
    public long deviceBytes() {
        return cl == null ? 0 : cl.ops().deviceBytes();
    }

    /** The forward pass of {@code bs <= batch} sequences. */
    public Output forward(int[] tokens, int[] targets, int bs) {
        if (bs < 1 || bs > batch) {
            throw new IllegalArgumentException("a batch of " + bs + " sequences, this model takes 1.." + batch);
        }
        int valid = TokenBatch.validate(tokens, targets, bs, seqLen, cfg.vocab());
        schedule.forward(tokens, targets, bs, Objective.stageOne(0), valid);
        float[] lam = schedule.gateLogits();
        for (int i = 0; i < lam.length; i++) {
            lam[i] = (float) RowOps.sigmoid(lam[i]);
        }
        return new Output(schedule.crossEntropies(), lam);
    }

    /** Step t's logits (N, V) of the last forward; needs {@code keepLogits}. */
    public float[] logits(int t) {
        return schedule.logits(t);
    }

    @Override
    public void close() {
        if (cl != null) {
            cl.close();
        }
    }
}
