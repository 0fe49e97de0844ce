package io.ouro.worker.reference;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.NonFiniteException;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.model.TokenBatch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

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
 * micro-batches add up to the gradient of the batch at once. {@link Recompute} decides what the forward pass keeps;
 * what it drops, the backward pass recomputes with the same ops. The logits exist one block of rows at a time
 * ({@link #headBlock}), so a long sequence never holds its (N, V) logits at once.
 *
 * <p>This class is the float32 source of a float64 twin ({@code io.ouro.worker.reference64}) generated at build
 * time for gradient checking.
 */
public final class LoopSchedule {

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final StepOps ops;
    private final Recompute recompute;
    private final boolean keepLogits;
    private final int micro, seqLen, rows, d, ffn, vocab, layers, steps, heads, hd, block;

    // the activations, by role; see sizes() for what each mode keeps
    private final Region emb, z, lse, ce, p, dz, dce, head, logits;
    private final Region[] xt, rstdF, hn;
    private final Cell[] cells;
    // inputs of layers 1..L-1 (layer 0 reads the embeddings or the previous step's hn): per (step, layer), or per
    // layer, reused by every step, in LOOP_STEP mode
    private final Region[] inputs;
    private final Region gH0, gH1, gA, gB, gQ, gK, gV, gM, gG, gU;

    // the micro-batch in flight
    private int n, b;
    private Objective objective;
    private boolean forwardDone;

    /** The activations of one layer application (what its backward reads). */
    private static final class Cell {
        Region x0;
        Region a1, q, k, v, att, state, o, x1, f1, g, u, m, f, rstd1, rstd2, rstd3, rstd4;
    }

    /**
     * @param micro      sequences per micro-batch (the workspace's size)
     * @param keepLogits keep every step's (N, V) logits for {@link #logits(int)} (tests; one micro-batch only)
     */
    public LoopSchedule(LoopConfig cfg, StepOps ops, int micro, int seqLen, Recompute recompute, boolean keepLogits) {
        if (micro <= 0 || seqLen <= 0) {
            throw new IllegalArgumentException("micro-batch " + micro + " x " + seqLen + ": both must be positive");
        }
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        this.ops = ops;
        this.recompute = recompute;
        this.keepLogits = keepLogits;
        this.micro = micro;
        this.seqLen = seqLen;
        this.rows = Math.multiplyExact(micro, seqLen);
        this.d = cfg.hidden();
        this.ffn = cfg.ffn();
        this.vocab = cfg.vocab();
        this.layers = cfg.layers();
        this.steps = cfg.steps();
        this.heads = cfg.heads();
        this.hd = cfg.headDim();
        this.block = headBlock(rows, vocab);

        long state = ops.attentionStateSize(micro, seqLen, heads);
        Plan plan = new Plan(cfg, micro, seqLen, recompute, keepLogits, state);
        Region[] r = ops.allocate(plan.sizes());
        int[] next = {0};
        emb = r[next[0]++];
        z = r[next[0]++];
        lse = r[next[0]++];
        ce = r[next[0]++];
        p = r[next[0]++];
        dz = r[next[0]++];
        dce = r[next[0]++];
        head = r[next[0]++];
        logits = keepLogits ? r[next[0]++] : null;
        xt = take(r, next, steps);
        rstdF = take(r, next, steps);
        hn = take(r, next, steps);
        inputs = take(r, next, plan.inputs);
        cells = new Cell[plan.cells];
        for (int i = 0; i < cells.length; i++) {
            Cell c = new Cell();
            c.a1 = r[next[0]++];
            c.q = r[next[0]++];
            c.k = r[next[0]++];
            c.v = r[next[0]++];
            c.att = r[next[0]++];
            c.o = r[next[0]++];
            c.x1 = r[next[0]++];
            c.f1 = r[next[0]++];
            c.f = r[next[0]++];
            c.g = r[next[0]++];
            c.u = r[next[0]++];
            c.m = r[next[0]++];
            c.state = r[next[0]++];
            c.rstd1 = r[next[0]++];
            c.rstd2 = r[next[0]++];
            c.rstd3 = r[next[0]++];
            c.rstd4 = r[next[0]++];
            cells[i] = c;
        }
        gH0 = r[next[0]++];
        gH1 = r[next[0]++];
        gA = r[next[0]++];
        gB = r[next[0]++];
        gQ = r[next[0]++];
        gK = r[next[0]++];
        gV = r[next[0]++];
        gM = r[next[0]++];
        gG = r[next[0]++];
        gU = r[next[0]++];
        if (next[0] != r.length) {
            throw new IllegalStateException("LoopSchedule: " + r.length + " regions planned, " + next[0] + " used");
        }
    }

    /** Rows per block of logits, chosen so a block stays near 16M elements. */
    public static int headBlock(int rows, int vocab) {
        return Math.max(1, Math.min(rows, Math.max(64, (1 << 24) / vocab)));
    }

    /**
     * The regions one micro-batch needs, in the order the schedule takes them: the sizes the backend allocates
     * and the activation memory {@code ouro plan} reports are this one list.
     */
    public static final class Plan {
        final int cells, inputs;
        private final List<Long> sizes = new ArrayList<>();

        public Plan(LoopConfig cfg, int micro, int seqLen, Recompute recompute, boolean keepLogits, long stateSize) {
            long n = (long) micro * seqLen, d = cfg.hidden(), f = cfg.ffn(), v = cfg.vocab();
            int t = cfg.steps(), l = cfg.layers();
            long nd = n * d, nf = n * f;
            cells = recompute == Recompute.NONE ? t * l : 1;
            inputs = switch (recompute) {
                case NONE, LAYER -> t * (l - 1);
                case LOOP_STEP -> l - 1;
            };
            add(1, nd);                                   // embeddings
            add(6, t * n);                                // z, lse, ce, p, dz, dce
            add(1, headBlock((int) Math.min(n, Integer.MAX_VALUE), (int) v) * v);
            if (keepLogits) {
                add(1, t * n * v);
            }
            add(t, nd);                                   // xt: input of the final norm
            add(t, n);                                    // its rstd
            add(t, nd);                                   // hn: its output
            add(inputs, nd);
            for (int i = 0; i < cells; i++) {
                add(8, nd);                               // a1, q, k, v, att, o, x1, f1
                add(1, nd);                               // f
                add(3, nf);                               // g, u, m
                add(1, stateSize);
                add(4, n);                                // rstd1..4
            }
            add(7, nd);                                   // gH0, gH1, gA, gB, gQ, gK, gV
            add(3, nf);                                   // gM, gG, gU
        }

        private void add(int count, long size) {
            for (int i = 0; i < count; i++) {
                sizes.add(size);
            }
        }

        public long[] sizes() {
            return sizes.stream().mapToLong(Long::longValue).toArray();
        }

        /** Elements of all regions. */
        public long total() {
            return sizes.stream().mapToLong(Long::longValue).sum();
        }

        /** The largest region. */
        public long largest() {
            return sizes.stream().mapToLong(Long::longValue).max().orElse(0);
        }
    }

    private static Region[] take(Region[] r, int[] next, int count) {
        Region[] out = Arrays.copyOfRange(r, next[0], next[0] + count);
        next[0] += count;
        return out;
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

    /**
     * One training step's forward and backward over {@code batch} sequences, as micro-batches; the gradient is
     * added into the backend's (zero it first). With {@code train} false, forward only (validation).
     */
    public StepReport run(int[] tokens, int[] targets, int batch, Objective objective, boolean train) {
        int valid = TokenBatch.validate(tokens, targets, batch, seqLen, vocab);
        if (keepLogits && batch > micro) {
            throw new IllegalArgumentException("keepLogits needs the batch in one micro-batch (" + batch + " > " + micro + ")");
        }
        double loss = 0;
        double[] ceSum = new double[steps], exitSum = new double[steps];
        for (int s0 = 0; s0 < batch; s0 += micro) {
            int bs = Math.min(micro, batch - s0);
            int from = s0 * seqLen, to = (s0 + bs) * seqLen;
            double[] sums = forward(Arrays.copyOfRange(tokens, from, to), Arrays.copyOfRange(targets, from, to), bs,
                    objective, valid);
            loss += sums[0];
            for (int t = 0; t < steps; t++) {
                ceSum[t] += sums[1 + t];
                exitSum[t] += sums[1 + steps + t];
            }
            if (train) {
                backward();
            }
        }
        double[] stepCe = new double[steps], meanExit = new double[steps];
        for (int t = 0; t < steps; t++) {
            stepCe[t] = ceSum[t] / valid;
            meanExit[t] = exitSum[t] / valid;
        }
        return new StepReport(loss, stepCe, meanExit, valid);
    }

    /**
     * The forward pass of one micro-batch of {@code bs} sequences ({@code bs} at most the workspace's); the objective
     * is normalised by {@code tokens}. Returns {loss, sum CE_t (T), sum p_t (T)} over the rows with a target.
     */
    public double[] forward(int[] tokens, int[] targets, int bs, Objective objective, int tokens0) {
        if (bs > micro) {
            throw new IllegalArgumentException("micro-batch of " + bs + " sequences in a workspace for " + micro);
        }
        this.b = bs;
        this.n = bs * seqLen;
        this.objective = objective;
        this.forwardDone = false;
        ops.setBatch(tokens, targets);
        float eps = (float) cfg.normEps();
        ops.embedForward(emb, layout.embed(), n, d);
        for (int t = 0; t < steps; t++) {
            for (int l = 0; l < layers; l++) {
                Cell c = cellFor(t, l);
                layerForward(layout.layer(l), c, outputOf(t, l), eps);
            }
            ops.rmsnormForward(hn[t], rstdF[t], xt[t], layout.finalNorm(), n, d, eps);
            for (int r0 = 0; r0 < n; r0 += block) {
                int rs = Math.min(block, n - r0);
                ops.linearForward(head, hn[t].at((long) r0 * d), layout.lmHead(), rs, d, vocab);
                ops.crossEntropyForward(head, lse.at((long) t * n + r0), ce.at((long) t * n + r0), r0, rs, vocab);
                if (keepLogits) {
                    ops.copy(logits.at(((long) t * n + r0) * vocab), head, rs * vocab);
                }
            }
            ops.linearForward(z.at((long) t * n), hn[t], layout.gateWeight(), n, d, 1);
            ops.biasAdd(z.at((long) t * n), layout.gateBias(), n);
        }
        double[] sums = ops.exitObjective(z, ce, p, dz, dce, n, steps, objective, tokens0);
        if (!Double.isFinite(sums[0])) {
            throw new NonFiniteException("loss is " + sums[0] + " (per-step CE sums " + Arrays.toString(
                    Arrays.copyOfRange(sums, 1, 1 + steps)) + ")");
        }
        forwardDone = true;
        return sums;
    }

    /** Adds the gradient of the last {@link #forward}'s objective into the backend's gradient. */
    public void backward() {
        if (!forwardDone) {
            throw new IllegalStateException("backward needs a successful forward first");
        }
        forwardDone = false;
        TensorView gw = layout.gateWeight();
        boolean lm = objective.trainsLm();
        float eps = (float) cfg.normEps();
        Region gH = gH0, gTmp = gH1;
        ops.zero(gH, n * d);
        for (int t = steps - 1; t >= 0; t--) {
            // the head and the gate read h_t; the gradient of the later steps' input is already in gH
            ops.linearBackwardWeight(gw, dz.at((long) t * n), hn[t], n, d, 1);
            ops.biasBackward(layout.gateBias(), dz.at((long) t * n), n);
            if (!lm) {
                continue;
            }
            ops.linearBackwardInput(gH, dz.at((long) t * n), gw, n, d, 1);
            for (int r0 = 0; r0 < n; r0 += block) {
                int rs = Math.min(block, n - r0);
                Region h = hn[t].at((long) r0 * d);
                ops.linearForward(head, h, layout.lmHead(), rs, d, vocab);
                ops.crossEntropyBackward(head, lse.at((long) t * n + r0), dce.at((long) t * n + r0), r0, rs, vocab);
                ops.linearBackwardInput(gH.at((long) r0 * d), head, layout.lmHead(), rs, d, vocab);
                ops.linearBackwardWeight(layout.lmHead(), head, h, rs, d, vocab);
            }
            ops.zero(gTmp, n * d);
            ops.rmsnormBackward(gTmp, gH, xt[t], rstdF[t], layout.finalNorm(), n, d);
            Region s = gH;
            gH = gTmp;
            gTmp = s;
            if (recompute == Recompute.LOOP_STEP) {
                // the step's layer inputs again (the last layer's output, xt, is kept)
                for (int l = 0; l + 1 < layers; l++) {
                    layerForward(layout.layer(l), cellFor(t, l), outputOf(t, l), eps);
                }
            }
            for (int l = layers - 1; l >= 0; l--) {
                Cell c = cellFor(t, l);
                if (recompute != Recompute.NONE) {
                    // rewrites the layer's output with the same values; nothing reads it again in this backward
                    layerForward(layout.layer(l), c, outputOf(t, l), eps);
                }
                layerBackward(layout.layer(l), c, gH);
            }
        }
        if (lm) {
            ops.embedBackward(layout.embed(), gH, n, d);
        }
    }

    /** Global-norm clipping as torch's clip_grad_norm_; returns the norm before clipping. */
    public double clipGradients(double maxNorm) {
        double norm = Math.sqrt(ops.gradSumSquares());
        double coef = maxNorm / (norm + 1e-6);
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
        return ops.read(logits.at((long) t * n * vocab), n * vocab);
    }

    /** The gate logits z of the last forward, (T, N). */
    public float[] gateLogits() {
        return ops.read(z, steps * n);
    }

    /** Per-row cross-entropy of every step of the last forward, (T, N); 0 where there is no target. */
    public float[] crossEntropies() {
        return ops.read(ce, steps * n);
    }

    // the cell that holds layer l of step t: its own in NONE mode, the one working cell otherwise, with its input
    private Cell cellFor(int t, int l) {
        Cell c = cells[recompute == Recompute.NONE ? t * layers + l : 0];
        if (l == 0) {
            c.x0 = t == 0 ? emb : hn[t - 1];
        } else if (recompute != Recompute.LOOP_STEP) {
            c.x0 = inputs[t * (layers - 1) + l - 1];
        } else if (recompute == Recompute.LOOP_STEP) {
            c.x0 = inputs[l - 1];
        }
        return c;
    }

    // where layer l of step t writes its output: the next layer's input, or the final norm's input
    private Region outputOf(int t, int l) {
        if (l + 1 == layers) {
            return xt[t];
        }
        return recompute == Recompute.LOOP_STEP ? inputs[l] : inputs[t * (layers - 1) + l];
    }

    private void layerForward(TensorView[] lt, Cell c, Region out, float eps) {
        int nd = n * d, nf = n * ffn;
        ops.rmsnormForward(c.a1, c.rstd1, c.x0, lt[ParamLayout.IN_NORM], n, d, eps);
        ops.linearForward(c.q, c.a1, lt[ParamLayout.Q], n, d, d);
        ops.linearForward(c.k, c.a1, lt[ParamLayout.K], n, d, d);
        ops.linearForward(c.v, c.a1, lt[ParamLayout.V], n, d, d);
        ops.rope(c.q, n, seqLen, heads, hd, true);
        ops.rope(c.k, n, seqLen, heads, hd, true);
        ops.attentionForward(c.att, c.state, c.q, c.k, c.v, b, seqLen, heads, hd);
        ops.linearForward(c.o, c.att, lt[ParamLayout.O], n, d, d);
        ops.rmsnormForward(c.x1, c.rstd2, c.o, lt[ParamLayout.IN_NORM_2], n, d, eps);
        ops.add(c.x1, c.x0, nd);
        ops.rmsnormForward(c.f1, c.rstd3, c.x1, lt[ParamLayout.POST_NORM], n, d, eps);
        ops.linearForward(c.g, c.f1, lt[ParamLayout.GATE], n, d, ffn);
        ops.linearForward(c.u, c.f1, lt[ParamLayout.UP], n, d, ffn);
        ops.swigluForward(c.m, c.g, c.u, nf);
        ops.linearForward(c.f, c.m, lt[ParamLayout.DOWN], n, ffn, d);
        ops.rmsnormForward(out, c.rstd4, c.f, lt[ParamLayout.POST_NORM_2], n, d, eps);
        ops.add(out, c.x1, nd);
    }

    /** gH holds dL/d(layer output) on entry and dL/d(layer input) on exit. */
    private void layerBackward(TensorView[] lt, Cell c, Region gH) {
        int nd = n * d, nf = n * ffn;
        // FFN half: out = x1 + norm4(down(swiglu(norm3(x1))))
        ops.zero(gA, nd);
        ops.rmsnormBackward(gA, gH, c.f, c.rstd4, lt[ParamLayout.POST_NORM_2], n, d);
        ops.zero(gM, nf);
        ops.linearBackwardInput(gM, gA, lt[ParamLayout.DOWN], n, ffn, d);
        ops.linearBackwardWeight(lt[ParamLayout.DOWN], gA, c.m, n, ffn, d);
        ops.zero(gG, nf);
        ops.zero(gU, nf);
        ops.swigluBackward(gG, gU, gM, c.g, c.u, nf);
        ops.zero(gB, nd);
        ops.linearBackwardInput(gB, gG, lt[ParamLayout.GATE], n, d, ffn);
        ops.linearBackwardInput(gB, gU, lt[ParamLayout.UP], n, d, ffn);
        ops.linearBackwardWeight(lt[ParamLayout.GATE], gG, c.f1, n, d, ffn);
        ops.linearBackwardWeight(lt[ParamLayout.UP], gU, c.f1, n, d, ffn);
        // gH (the residual path) now accumulates dL/dx1
        ops.rmsnormBackward(gH, gB, c.x1, c.rstd3, lt[ParamLayout.POST_NORM], n, d);

        // attention half: x1 = x0 + norm2(o_proj(attn(rope(q), rope(k), v)))
        ops.zero(gA, nd);
        ops.rmsnormBackward(gA, gH, c.o, c.rstd2, lt[ParamLayout.IN_NORM_2], n, d);
        ops.zero(gB, nd);
        ops.linearBackwardInput(gB, gA, lt[ParamLayout.O], n, d, d);
        ops.linearBackwardWeight(lt[ParamLayout.O], gA, c.att, n, d, d);
        ops.zero(gQ, nd);
        ops.zero(gK, nd);
        ops.zero(gV, nd);
        ops.attentionBackward(gQ, gK, gV, gB, c.att, c.state, c.q, c.k, c.v, b, seqLen, heads, hd);
        ops.rope(gQ, n, seqLen, heads, hd, false);
        ops.rope(gK, n, seqLen, heads, hd, false);
        ops.zero(gA, nd);
        ops.linearBackwardInput(gA, gQ, lt[ParamLayout.Q], n, d, d);
        ops.linearBackwardInput(gA, gK, lt[ParamLayout.K], n, d, d);
        ops.linearBackwardInput(gA, gV, lt[ParamLayout.V], n, d, d);
        ops.linearBackwardWeight(lt[ParamLayout.Q], gQ, c.a1, n, d, d);
        ops.linearBackwardWeight(lt[ParamLayout.K], gK, c.a1, n, d, d);
        ops.linearBackwardWeight(lt[ParamLayout.V], gV, c.a1, n, d, d);
        ops.rmsnormBackward(gH, gA, c.x0, c.rstd1, lt[ParamLayout.IN_NORM], n, d);
    }
}
