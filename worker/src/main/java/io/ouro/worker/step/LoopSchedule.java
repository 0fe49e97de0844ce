package io.ouro.worker.step;

import io.ouro.worker.model.GradClip;
import io.ouro.worker.model.GradientReady;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.NonFiniteException;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParameterReadiness;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.model.TokenBatch;

import io.ouro.worker.step.StepWorkspace.Cell;

import java.util.Arrays;

/**
 * The training step of the LoopLM, written once for every backend ({@link StepOps}):
 *
 * <pre>
 * h = embed(tokens)
 * for t in 1..T:
 *     for each layer: h = h + norm2(attn(norm1(h)));  h = h + norm4(swiglu(norm3(h)))
 *     h = final_norm(h)               (feeds step t + 1)
 *     logits_t = lm_head(h);  lambda_t = sigmoid(gate(h))
 * objective over the exit distribution, backward, gradients added into the backend's gradient
 * </pre>
 *
 * A step's batch runs as micro-batches of {@code micro} sequences, forward then backward each, with the gradients
 * accumulating: the objective of every micro-batch is normalised by the whole batch's token count, so k
 * micro-batches add up to the gradient of the batch at once. The logits exist one block of rows at a time
 * ({@link StepWorkspace#headBlock}), so a long sequence never holds its (N, V) logits at once.
 *
 * <p>{@link Recompute} decides what the forward pass keeps. With {@code NONE} every activation of every (loop step,
 * layer) stays. Otherwise the hidden states kept across layers (the layer inputs, each step's final-norm input and
 * output, the embeddings) are <em>stash</em> regions, which the schedule only copies to and from, so that a backend
 * may keep them in memory its other ops cannot address; a layer runs in a working set of its own that the backward
 * pass refills by recomputing the layer. Inside a layer only attention mixes tokens: everything else runs on chunks
 * of {@code chunk} rows, so the working set holds q, k, v, the attention output and their gradients for the whole
 * micro-batch and everything else for one chunk. With one chunk the gradients are bit-identical to keeping every
 * activation; with several, the weight gradients are summed chunk by chunk (a different order of the same sum).
 *
 * <p>This class is the float32 source of a float64 twin ({@code io.ouro.worker.step64}) generated at build
 * time for gradient checking.
 */
public final class LoopSchedule {

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final StepOps ops;
    private final Recompute recompute;
    private final StepWorkspace ws;
    private final boolean rc, keepLogits, storeLogits;
    private final int micro, seqLen, chunk, d, ffn, vocab, layers, steps, heads, hd, block;

    // the micro-batch in flight
    private int n, b;
    private Objective objective;
    private boolean forwardDone;
    /** Asked before the forward first reads each group of parameters (ZeRO-1's all-gather still arriving). */
    private ParameterReadiness params = ParameterReadiness.NONE;

    /**
     * @param micro      sequences per micro-batch (the workspace's size)
     * @param chunk      rows per chunk of a layer's row-wise ops when recomputing (0: the whole micro-batch)
     * @param keepLogits keep every step's (N, V) logits for {@link #logits(int)} (tests; one micro-batch only)
     */
    public LoopSchedule(LoopConfig cfg, StepOps ops, int micro, int seqLen, Recompute recompute, int chunk,
                        boolean keepLogits) {
        this(cfg, ops, micro, seqLen, recompute, chunk, keepLogits, false);
    }

    /** The same, with the stash in bfloat16 when {@code bf16Stash} ({@link StepOps#allocate}). */
    public LoopSchedule(LoopConfig cfg, StepOps ops, int micro, int seqLen, Recompute recompute, int chunk,
                        boolean keepLogits, boolean bf16Stash) {
        this(cfg, ops, micro, seqLen, recompute, chunk, keepLogits, bf16Stash, true);
    }

    /**
     * The same; {@code backward} false for a schedule that only runs forward passes (evaluation), which then keeps
     * no logits for a backward ({@link StepWorkspace#storesLogits}).
     */
    public LoopSchedule(LoopConfig cfg, StepOps ops, int micro, int seqLen, Recompute recompute, int chunk,
                        boolean keepLogits, boolean bf16Stash, boolean backward) {
        if (micro <= 0 || seqLen <= 0 || chunk < 0) {
            throw new IllegalArgumentException("micro-batch " + micro + " x " + seqLen + ", chunk " + chunk
                    + ": expected positive sizes");
        }
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        this.ops = ops;
        this.recompute = recompute;
        this.rc = recompute != Recompute.NONE;
        this.keepLogits = keepLogits;
        this.micro = micro;
        this.seqLen = seqLen;
        this.d = cfg.hidden();
        this.ffn = cfg.ffn();
        this.vocab = cfg.vocab();
        this.layers = cfg.layers();
        this.steps = cfg.steps();
        this.heads = cfg.heads();
        this.hd = cfg.headDim();
        this.ws = new StepWorkspace(cfg, ops, micro, seqLen, recompute, chunk, keepLogits, bf16Stash, backward);
        this.chunk = ws.chunk;
        this.block = ws.block;
        this.storeLogits = ws.storeLogits;
    }

    public ParamLayout layout() {
        return layout;
    }

    public Recompute recompute() {
        return recompute;
    }

    /** Sequences per micro-batch. */
    public int microBatch() {
        return micro;
    }

    /** Rows per chunk of a layer's row-wise ops. */
    public int chunk() {
        return chunk;
    }

    /**
     * One training step's forward and backward over {@code batch} sequences, as micro-batches; the gradient is
     * added into the backend's (zero it first). With {@code train} false, forward only (validation).
     */
    public StepReport run(int[] tokens, int[] targets, int batch, Objective objective, boolean train) {
        return run(tokens, targets, batch, objective, train, GradientReady.NONE);
    }

    /**
     * As {@link #run(int[], int[], int, Objective, boolean)}, telling {@code ready} during the last micro-batch's
     * backward as each group of {@link ParamLayout#gradientGroups()} gets its final gradient.
     */
    public StepReport run(int[] tokens, int[] targets, int batch, Objective objective, boolean train,
                          GradientReady ready) {
        return run(tokens, targets, batch, objective, train, ParameterReadiness.NONE, ready);
    }

    /**
     * The same, asking {@code params} before the forward first reads each group of parameters (the embedding, the
     * layers in order, the tail), so that parameters still arriving (ZeRO-1's all-gather overlapped with this
     * forward) are written before any op reads them.
     */
    public StepReport run(int[] tokens, int[] targets, int batch, Objective objective, boolean train,
                          ParameterReadiness params, GradientReady ready) {
        this.params = params;
        try {
            return runBatch(tokens, targets, batch, objective, train, ready);
        } finally {
            this.params = ParameterReadiness.NONE;
        }
    }

    private StepReport runBatch(int[] tokens, int[] targets, int batch, Objective objective, boolean train,
                                GradientReady ready) {
        int valid = TokenBatch.validate(tokens, targets, batch, seqLen, vocab);
        if (keepLogits && batch > micro) {
            throw new IllegalArgumentException("keepLogits needs the batch in one micro-batch (" + batch + " > " + micro + ")");
        }
        double[] total = new double[1 + 2 * steps];
        for (int s0 = 0; s0 < batch; s0 += micro) {
            int bs = Math.min(micro, batch - s0);
            int from = s0 * seqLen, to = (s0 + bs) * seqLen;
            double[] sums = forward(Arrays.copyOfRange(tokens, from, to), Arrays.copyOfRange(targets, from, to), bs,
                    objective, valid);
            for (int i = 0; i < total.length; i++) {
                total[i] += sums[i];
            }
            if (train) {
                backward(s0 + bs >= batch ? ready : GradientReady.NONE);
            }
        }
        return report(total, valid);
    }

    /** The report of a batch from the sums {@link #forward} returns (added over its micro-batches). */
    public static StepReport report(double[] sums, int tokens) {
        int steps = (sums.length - 1) / 2;
        double[] stepCe = new double[steps], meanExit = new double[steps];
        for (int t = 0; t < steps; t++) {
            stepCe[t] = sums[1 + t] / tokens;
            meanExit[t] = sums[1 + steps + t] / tokens;
        }
        return new StepReport(sums[0], stepCe, meanExit, tokens);
    }

    /**
     * The forward pass of one micro-batch of {@code bs} sequences ({@code bs} at most the workspace's); the objective
     * is normalised by {@code tokens}. Returns {loss, sum CE_t (T), sum p_t (T)} over the rows with a target.
     */
    public double[] forward(int[] tokenIds, int[] targets, int bs, Objective objective, int tokens) {
        if (bs > micro) {
            throw new IllegalArgumentException("micro-batch of " + bs + " sequences in a workspace for " + micro);
        }
        this.b = bs;
        this.n = bs * seqLen;
        this.objective = objective;
        this.forwardDone = false;
        ops.setBatch(tokenIds, targets);
        float eps = (float) cfg.normEps();
        int nd = n * d;
        params.await(layers + 1);
        ops.embedForward(rc ? ws.x0w : ws.emb, layout.embed(), n, d);
        if (rc) {
            ops.copy(ws.emb, ws.x0w, nd);
        }
        for (int t = 0; t < steps; t++) {
            for (int l = 0; l < layers; l++) {
                if (rc && l > 0) {
                    ops.copy(ws.x0w, ws.outw, nd);
                } else if (rc && t > 0) {
                    ops.copy(ws.x0w, ws.hnw, nd);
                }
                Region out = rc ? ws.outw : ws.outputOf(t, l);
                if (t == 0) {
                    params.await(layers - l);
                }
                layerForward(layout.layer(l), ws.cellFor(t, l), rc ? ws.x0w : ws.inputOf(t, l), out, eps);
                if (rc) {
                    ops.copy(ws.outputOf(t, l), ws.outw, nd);
                }
            }
            Region h = rc ? ws.hnw : ws.hn[t];
            if (t == 0) {
                params.await(0);
            }
            ops.rmsnormForward(h, ws.rstdF[t], rc ? ws.outw : ws.xt[t], layout.finalNorm(), n, d, eps);
            if (rc) {
                ops.copy(ws.hn[t], ws.hnw, nd);
            }
            for (int r0 = 0; r0 < n; r0 += block) {
                int rs = Math.min(block, n - r0);
                Region out = storeLogits ? ws.logits.at(((long) t * n + r0) * vocab) : ws.head;
                ops.linearForward(out, h.at((long) r0 * d), layout.lmHead(), rs, d, vocab);
                ops.crossEntropyForward(out, ws.lse.at((long) t * n + r0), ws.ce.at((long) t * n + r0), r0, rs, vocab);
            }
            ops.linearForward(ws.z.at((long) t * n), h, layout.gateWeight(), n, d, 1);
            ops.biasAdd(ws.z.at((long) t * n), layout.gateBias(), n);
        }
        double[] sums = ops.exitObjective(ws.z, ws.ce, ws.p, ws.dz, ws.dce, n, steps, objective, tokens);
        if (!Double.isFinite(sums[0])) {
            throw new NonFiniteException("loss is " + sums[0] + " (per-step CE sums " + Arrays.toString(
                    Arrays.copyOfRange(sums, 1, 1 + steps)) + ")");
        }
        forwardDone = true;
        return sums;
    }

    /** Adds the gradient of the last {@link #forward}'s objective into the backend's gradient. */
    public void backward() {
        backward(GradientReady.NONE);
    }

    /**
     * The backward, telling {@code ready} as each gradient group is finished: a parameter's gradient is final once
     * the first loop step's backward has gone past it (the tail after that step's head, each layer after its
     * backward, the embedding at the end); in Stage II only the gate learns, final after the first step's head.
     */
    public void backward(GradientReady ready) {
        if (!forwardDone) {
            throw new IllegalStateException("backward needs a successful forward first");
        }
        forwardDone = false;
        TensorView gw = layout.gateWeight();
        boolean lm = objective.trainsLm();
        float eps = (float) cfg.normEps();
        int nd = n * d;
        Region gH = ws.gH0, gTmp = ws.gH1;
        ops.zero(gH, nd);
        for (int t = steps - 1; t >= 0; t--) {
            Region h = ws.hn[t];
            if (rc) {
                ops.copy(ws.hnw, ws.hn[t], nd);
                h = ws.hnw;
            }
            // the head and the gate read h_t; the gradient of the later steps' input is already in gH
            ops.linearBackwardWeight(gw, ws.dz.at((long) t * n), h, n, d, 1);
            ops.biasBackward(layout.gateBias(), ws.dz.at((long) t * n), n);
            if (!lm) {
                if (t == 0) {
                    for (int g = 0; g < layers + 2; g++) {
                        ready.ready(g);
                    }
                }
                continue;
            }
            ops.linearBackwardInput(gH, ws.dz.at((long) t * n), gw, n, d, 1);
            for (int r0 = 0; r0 < n; r0 += block) {
                int rs = Math.min(block, n - r0);
                Region hr = h.at((long) r0 * d);
                if (storeLogits) {
                    ops.copy(ws.head, ws.logits.at(((long) t * n + r0) * vocab), rs * vocab);
                } else {
                    ops.linearForward(ws.head, hr, layout.lmHead(), rs, d, vocab);
                }
                ops.crossEntropyBackward(ws.head, ws.lse.at((long) t * n + r0), ws.dce.at((long) t * n + r0), r0, rs,
                        vocab);
                ops.linearBackwardInput(gH.at((long) r0 * d), ws.head, layout.lmHead(), rs, d, vocab);
                ops.linearBackwardWeight(layout.lmHead(), ws.head, hr, rs, d, vocab);
            }
            Region x = ws.xt[t];
            if (rc) {
                ops.copy(ws.outw, ws.xt[t], nd);
                x = ws.outw;
            }
            ops.zero(gTmp, nd);
            ops.rmsnormBackward(gTmp, gH, x, ws.rstdF[t], layout.finalNorm(), n, d);
            if (t == 0) {
                ready.ready(0);
            }
            Region s = gH;
            gH = gTmp;
            gTmp = s;
            if (recompute == Recompute.LOOP_STEP) {
                // the step's layer inputs again (the last layer's output, xt, is kept)
                ops.copy(ws.x0w, ws.inputOf(t, 0), nd);
                for (int l = 0; l + 1 < layers; l++) {
                    layerForward(layout.layer(l), ws.cellFor(t, l), ws.x0w, ws.outw, eps);
                    ops.copy(ws.inputs[l], ws.outw, nd);
                    ops.copy(ws.x0w, ws.outw, nd);
                }
            }
            for (int l = layers - 1; l >= 0; l--) {
                Region x0 = ws.inputOf(t, l);
                if (rc) {
                    ops.copy(ws.x0w, x0, nd);
                    x0 = ws.x0w;
                }
                layerBackward(layout.layer(l), ws.cellFor(t, l), x0, gH, eps);
                if (t == 0) {
                    ready.ready(layers - l);
                }
            }
        }
        if (lm) {
            ops.embedBackward(layout.embed(), gH, n, d);
            ready.ready(layers + 1);
        }
    }

    /** Global-norm clipping as torch's clip_grad_norm_; returns the norm before clipping. */
    public double clipGradients(double maxNorm) {
        return clipGradients(maxNorm, 1);
    }

    /**
     * Divides the gradient by {@code divisor}, then clips it to {@code maxNorm}; returns the norm before clipping.
     * The data-parallel step passes the global batch's tokens to turn the all-reduced token-weighted sum into the
     * mean (a division, as the host did before the exchange moved to the device: the same bits).
     */
    public double clipGradients(double maxNorm, double divisor) {
        if (divisor != 1) {
            ops.divideGrads((float) divisor);
        }
        double norm = Math.sqrt(ops.gradSumSquares());
        double coef = GradClip.coefficient(norm, maxNorm);
        if (coef < 1) {
            ops.scaleGrads((float) coef);
        }
        return norm;
    }

    /** The (N, V) logits of step {@code t} (0-based) of the last forward; needs keepLogits. */
    public float[] logits(int t) {
        if (!keepLogits) {
            throw new IllegalStateException("logits were not kept: pass keepLogits = true");
        }
        return ops.read(ws.logits.at((long) t * n * vocab), n * vocab);
    }

    /** The gate logits z of the last forward, (T, N). */
    public float[] gateLogits() {
        return ops.read(ws.z, steps * n);
    }

    /** Per-row cross-entropy of every step of the last forward, (T, N); 0 where there is no target. */
    public float[] crossEntropies() {
        return ops.read(ws.ce, steps * n);
    }

    // x0 -> out, both (N, D) working regions
    private void layerForward(TensorView[] lt, Cell c, Region x0, Region out, float eps) {
        preAttention(lt, c, x0, eps);
        for (int r0 = 0; r0 < n; r0 += chunk) {
            int rs = Math.min(chunk, n - r0);
            postAttention(lt, c, x0, out.at((long) r0 * d), r0, rs, eps);
        }
    }

    // q, k, v (row chunk by row chunk) and the attention over the whole micro-batch
    private void preAttention(TensorView[] lt, Cell c, Region x0, float eps) {
        for (int r0 = 0; r0 < n; r0 += chunk) {
            int rs = Math.min(chunk, n - r0);
            Region a1 = ws.local(c.a1, r0, d);
            ops.rmsnormForward(a1, ws.local(c.rstd1, r0, 1), x0.at((long) r0 * d), lt[ParamLayout.IN_NORM], rs, d, eps);
            ops.linearForward(c.q.at((long) r0 * d), a1, lt[ParamLayout.Q], rs, d, d);
            ops.linearForward(c.k.at((long) r0 * d), a1, lt[ParamLayout.K], rs, d, d);
            ops.linearForward(c.v.at((long) r0 * d), a1, lt[ParamLayout.V], rs, d, d);
        }
        ops.rope(c.q, n, seqLen, heads, hd, true);
        ops.rope(c.k, n, seqLen, heads, hd, true);
        ops.attentionForward(c.att, c.state, c.q, c.k, c.v, b, seqLen, heads, hd);
    }

    // rows [r0, r0 + rs): out = x1 + norm4(down(swiglu(norm3(x1)))), x1 = x0 + norm2(o_proj(att))
    private void postAttention(TensorView[] lt, Cell c, Region x0, Region out, int r0, int rs, float eps) {
        Region o = ws.local(c.o, r0, d), x1 = ws.local(c.x1, r0, d);
        Region f1 = ws.local(c.f1, r0, d), f = ws.local(c.f, r0, d);
        Region g = ws.local(c.g, r0, ffn), u = ws.local(c.u, r0, ffn), m = ws.local(c.m, r0, ffn);
        ops.linearForward(o, c.att.at((long) r0 * d), lt[ParamLayout.O], rs, d, d);
        ops.rmsnormForward(x1, ws.local(c.rstd2, r0, 1), o, lt[ParamLayout.IN_NORM_2], rs, d, eps);
        ops.add(x1, x0.at((long) r0 * d), rs * d);
        ops.rmsnormForward(f1, ws.local(c.rstd3, r0, 1), x1, lt[ParamLayout.POST_NORM], rs, d, eps);
        ops.linearForward(g, f1, lt[ParamLayout.GATE], rs, d, ffn);
        ops.linearForward(u, f1, lt[ParamLayout.UP], rs, d, ffn);
        ops.swigluForward(m, g, u, rs * ffn);
        ops.linearForward(f, m, lt[ParamLayout.DOWN], rs, ffn, d);
        ops.rmsnormForward(out, ws.local(c.rstd4, r0, 1), f, lt[ParamLayout.POST_NORM_2], rs, d, eps);
        ops.add(out, x1, rs * d);
    }

    /** gH holds dL/d(layer output) on entry and dL/d(layer input) on exit; x0 is the layer's input. */
    private void layerBackward(TensorView[] lt, Cell c, Region x0, Region gH, float eps) {
        if (rc) {
            preAttention(lt, c, x0, eps);
        }
        for (int r0 = 0; r0 < n; r0 += chunk) {
            int rs = Math.min(chunk, n - r0), cd = rs * d, cf = rs * ffn;
            if (rc) {
                postAttention(lt, c, x0, ws.y, r0, rs, eps);
            }
            Region o = ws.local(c.o, r0, d), x1 = ws.local(c.x1, r0, d);
            Region f1 = ws.local(c.f1, r0, d), f = ws.local(c.f, r0, d);
            Region g = ws.local(c.g, r0, ffn), u = ws.local(c.u, r0, ffn), m = ws.local(c.m, r0, ffn);
            Region gHc = gH.at((long) r0 * d);
            // FFN half: out = x1 + norm4(down(swiglu(norm3(x1))))
            ops.zero(ws.gA, cd);
            ops.rmsnormBackward(ws.gA, gHc, f, ws.local(c.rstd4, r0, 1), lt[ParamLayout.POST_NORM_2], rs, d);
            ops.zero(ws.gM, cf);
            ops.linearBackwardInput(ws.gM, ws.gA, lt[ParamLayout.DOWN], rs, ffn, d);
            ops.linearBackwardWeight(lt[ParamLayout.DOWN], ws.gA, m, rs, ffn, d);
            ops.zero(ws.gG, cf);
            ops.zero(ws.gU, cf);
            ops.swigluBackward(ws.gG, ws.gU, ws.gM, g, u, cf);
            ops.zero(ws.gB, cd);
            ops.linearBackwardInput(ws.gB, ws.gG, lt[ParamLayout.GATE], rs, d, ffn);
            ops.linearBackwardInput(ws.gB, ws.gU, lt[ParamLayout.UP], rs, d, ffn);
            ops.linearBackwardWeight(lt[ParamLayout.GATE], ws.gG, f1, rs, d, ffn);
            ops.linearBackwardWeight(lt[ParamLayout.UP], ws.gU, f1, rs, d, ffn);
            // gH (the residual path) now accumulates dL/dx1
            ops.rmsnormBackward(gHc, ws.gB, x1, ws.local(c.rstd3, r0, 1), lt[ParamLayout.POST_NORM], rs, d);
            // attention half: x1 = x0 + norm2(o_proj(att)); the output projection, chunk by chunk
            ops.zero(ws.gA, cd);
            ops.rmsnormBackward(ws.gA, gHc, o, ws.local(c.rstd2, r0, 1), lt[ParamLayout.IN_NORM_2], rs, d);
            ops.zero(ws.datt.at((long) r0 * d), cd);
            ops.linearBackwardInput(ws.datt.at((long) r0 * d), ws.gA, lt[ParamLayout.O], rs, d, d);
            ops.linearBackwardWeight(lt[ParamLayout.O], ws.gA, c.att.at((long) r0 * d), rs, d, d);
        }
        int nd = n * d;
        ops.zero(ws.dq, nd);
        ops.zero(ws.dk, nd);
        ops.zero(ws.dv, nd);
        ops.attentionBackward(ws.dq, ws.dk, ws.dv, ws.datt, c.att, c.state, c.q, c.k, c.v, b, seqLen, heads, hd);
        ops.rope(ws.dq, n, seqLen, heads, hd, false);
        ops.rope(ws.dk, n, seqLen, heads, hd, false);
        for (int r0 = 0; r0 < n; r0 += chunk) {
            int rs = Math.min(chunk, n - r0);
            long at = (long) r0 * d;
            Region a1 = ws.local(c.a1, r0, d), rstd1 = ws.local(c.rstd1, r0, 1);
            if (rc) {
                ops.rmsnormForward(a1, rstd1, x0.at(at), lt[ParamLayout.IN_NORM], rs, d, eps);
            }
            ops.zero(ws.gA, rs * d);
            ops.linearBackwardInput(ws.gA, ws.dq.at(at), lt[ParamLayout.Q], rs, d, d);
            ops.linearBackwardInput(ws.gA, ws.dk.at(at), lt[ParamLayout.K], rs, d, d);
            ops.linearBackwardInput(ws.gA, ws.dv.at(at), lt[ParamLayout.V], rs, d, d);
            ops.linearBackwardWeight(lt[ParamLayout.Q], ws.dq.at(at), a1, rs, d, d);
            ops.linearBackwardWeight(lt[ParamLayout.K], ws.dk.at(at), a1, rs, d, d);
            ops.linearBackwardWeight(lt[ParamLayout.V], ws.dv.at(at), a1, rs, d, d);
            ops.rmsnormBackward(gH.at(at), ws.gA, x0.at(at), rstd1, lt[ParamLayout.IN_NORM], rs, d);
        }
    }
}
