package io.ouro.worker.reference;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.NonFiniteException;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.step.LoopSchedule;

/**
 * The LoopLM in plain Java: {@link LoopSchedule} (the step, written once) over {@link JavaOps}, with the
 * parameters and gradients in the caller's flat arrays laid out by {@link ParamLayout}.
 *
 * <p>{@link #forward} then {@link #backward} run one batch as one micro-batch with every activation kept, the
 * shape the gradient checks and parity tests use; {@link #schedule} gives the schedule itself for micro-batches and
 * recomputation. Not thread-safe (it uses all cores itself). This class is the float32 source of a float64 twin
 * ({@code io.ouro.worker.reference64}) generated at build time for gradient checking.
 */
public final class ReferenceModel {

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final int paramCount;
    private final JavaOps ops;
    private LoopSchedule schedule;
    private int batch = -1, seqLen = -1;
    private boolean keepLogits;

    public ReferenceModel(LoopConfig cfg) {
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        this.paramCount = layout.arraySize();
        this.ops = new JavaOps(cfg);
    }

    public LoopConfig config() {
        return cfg;
    }

    public ParamLayout layout() {
        return layout;
    }

    /** The ops this model runs on, bound to the arrays of the last call. */
    public JavaOps ops() {
        return ops;
    }

    /** A schedule over this model's ops for batches of this shape; bind the arrays first with {@link #bind}. */
    public LoopSchedule schedule(StepShape shape) {
        return schedule(shape, false, true);
    }

    /**
     * A schedule that only runs forward passes (evaluation), keeping every step's logits of the last forward
     * ({@link LoopSchedule#logits}) when asked.
     */
    public LoopSchedule forwardSchedule(StepShape shape, boolean keepLogits) {
        return schedule(shape, keepLogits, false);
    }

    private LoopSchedule schedule(StepShape shape, boolean keepLogits, boolean backward) {
        this.batch = -1;
        this.schedule = null;
        return new LoopSchedule(cfg, ops, shape.micro(), shape.seqLen(), shape.recompute(), shape.chunk(), keepLogits,
                shape.bf16Stash(), backward);
    }

    /** Points the ops at these parameter and gradient arrays (checked against the layout). */
    public void bind(float[] params, float[] grads) {
        if (params.length != paramCount) {
            throw new IllegalArgumentException("params: expected length " + paramCount + " for " + cfg
                    + ", got " + params.length);
        }
        if (grads != null && grads.length != paramCount) {
            throw new IllegalArgumentException("grads: expected length " + paramCount + ", got " + grads.length);
        }
        ops.bind(params, grads);
    }

    /**
     * Runs the model on {@code batch} sequences of {@code seqLen} tokens and evaluates the objective.
     *
     * @param tokens     input ids, length batch * seqLen, row n = b * seqLen + s
     * @param targets    next-token ids of the same length; -1 marks a position without a target
     * @param keepLogits keep every step's (N,V) logits for {@link #logits(int)}
     */
    public StepReport forward(float[] params, int[] tokens, int[] targets, int batch, int seqLen,
                              Objective objective, boolean keepLogits) {
        bind(params, null);
        if (schedule == null || batch != this.batch || seqLen != this.seqLen || keepLogits != this.keepLogits) {
            schedule = null;
            schedule = new LoopSchedule(cfg, ops, batch, seqLen, Recompute.NONE, 0, keepLogits);
            this.batch = batch;
            this.seqLen = seqLen;
            this.keepLogits = keepLogits;
        }
        int valid = io.ouro.worker.model.TokenBatch.validate(tokens, targets, batch, seqLen, cfg.vocab());
        double[] sums;
        try {
            sums = schedule.forward(tokens, targets, batch, objective, valid);
        } catch (NonFiniteException e) {
            throw new NonFiniteException(diagnoseNonFinite(params, e.getMessage()));
        }
        return LoopSchedule.report(sums, valid);
    }

    /**
     * Back-propagates the objective of the last {@link #forward} and adds the gradient into
     * {@code grads} (same layout as the parameters). Stage II adds gradients for the exit gate only.
     */
    public void backward(float[] params, float[] grads) {
        if (schedule == null) {
            throw new IllegalStateException("backward needs a successful forward first");
        }
        bind(params, grads);
        schedule.backward();
    }

    /** The (N,V) logits of recurrent step {@code t} (0-based) from the last forward with keepLogits. */
    public float[] logits(int t) {
        if (schedule == null || !keepLogits) {
            throw new IllegalStateException("logits were not kept: pass keepLogits = true to forward");
        }
        return schedule.logits(t);
    }

    /** The exit gate's lambda_t per row from the last forward, (T,N). */
    public float[] exitLambdas() {
        float[] lam = schedule.gateLogits();
        for (int i = 0; i < lam.length; i++) {
            lam[i] = (float) ExitObjective.sigmoid(lam[i]);
        }
        return lam;
    }

    /** Per-row cross-entropy of every step from the last forward, (T,N); 0 where there is no target. */
    public float[] crossEntropies() {
        return schedule.crossEntropies();
    }

    private String diagnoseNonFinite(float[] params, String what) {
        for (TensorView t : layout.tensors()) {
            for (int i = t.off(); i < t.off() + t.len(); i++) {
                if (!Float.isFinite(params[i])) {
                    return what + ": parameter " + t.name() + " holds " + params[i] + " at element " + (i - t.off());
                }
            }
        }
        return what + " although every parameter is finite";
    }
}
