package io.ouro.worker.reference;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.NonFiniteException;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.model.TokenBatch;

import java.util.Arrays;

/**
 * The LoopLM in plain Java: forward and backward of the looped block, the exit gate and both
 * objectives, over one flat parameter buffer laid out by {@link ParamLayout}.
 *
 * <pre>
 * h = embed(tokens)
 * for t in 1..T:
 *     for each layer: h = h + norm2(attn(norm1(h)));  h = h + norm4(swiglu(norm3(h)))
 *     h = final_norm(h)               (feeds step t + 1)
 *     logits_t = lm_head(h);  lambda_t = sigmoid(gate(h))
 * </pre>
 *
 * A model instance owns the activations of its last forward pass, which {@link #backward} reads; it is
 * not thread-safe (it uses all cores itself). This class is the float32 source of a float64 twin
 * ({@code io.ouro.worker.reference64}) generated at build time for gradient checking.
 */
public final class ReferenceModel {

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final int d, ffn, vocab, layers, steps, heads, hd;
    private final int paramCount;

    // shape of the current workspace
    private int batch = -1, seqLen = -1, n;

    // activations of the last forward, per (step, layer) at index step * layers + layer
    private float[][] x0, a1, q, k, v, probs, att, o, x1, f1, g, u, m, f;
    private float[][] rstd1, rstd2, rstd3, rstd4;
    // per step: input of the final norm, its rstd and its output h_t
    private float[][] xt, rstdF, hn;
    private float[] cos, sin;
    // per (step, row): gate logits, log-sum-exp, CE, exit probability, and loss gradients
    private float[] z, lse, ce, p, dz, dce;
    private float[] headScratch;
    private int headBlock;
    private float[][] keptLogits;

    // backward scratch
    private float[] gH, gTmp, gA, gB, gQ, gK, gV, gM, gG, gU;

    // what the last forward saw
    private int[] tokens, targets;
    private Objective objective;
    private int validTokens;
    private boolean forwardDone;

    public ReferenceModel(LoopConfig cfg) {
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        this.paramCount = layout.arraySize();
        this.d = cfg.hidden();
        this.ffn = cfg.ffn();
        this.vocab = cfg.vocab();
        this.layers = cfg.layers();
        this.steps = cfg.steps();
        this.heads = cfg.heads();
        this.hd = cfg.headDim();
    }

    public LoopConfig config() {
        return cfg;
    }

    public ParamLayout layout() {
        return layout;
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
        checkInputs(params, tokens, targets, batch, seqLen);
        ensureWorkspace(batch, seqLen, keepLogits);
        this.tokens = tokens.clone();
        this.targets = targets.clone();
        this.objective = objective;
        this.forwardDone = false;
        float eps = (float) cfg.normEps();

        float[] h = x0[0];
        Embedding.forward(h, params, layout.embed().off(), this.tokens, n, d);
        for (int t = 0; t < steps; t++) {
            for (int l = 0; l < layers; l++) {
                int i = t * layers + l;
                float[] out = l + 1 < layers ? x0[i + 1] : xt[t];
                layerForward(params, layout.layer(l), i, out, eps);
            }
            RmsNorm.forward(hn[t], rstdF[t], xt[t], params, layout.finalNorm().off(), n, d, eps);
            if (t + 1 < steps) {
                System.arraycopy(hn[t], 0, x0[(t + 1) * layers], 0, n * d);
            }
            LmHeadLoss.forward(ce, t * n, lse, t * n, keepLogits ? keptLogits[t] : null, headScratch, headBlock,
                    hn[t], params, layout.lmHead().off(), this.targets, n, d, vocab);
            Matmul.forward(z, t * n, hn[t], 0, params, layout.gateWeight().off(), n, d, 1);
            float bias = params[layout.gateBias().off()];
            for (int r = 0; r < n; r++) {
                z[t * n + r] += bias;
            }
        }

        ExitObjective.distribution(p, z, this.targets, steps, n);
        double loss = objective.trainsLm()
                ? ExitObjective.stageOne(dz, dce, z, ce, this.targets, steps, n, validTokens, objective.beta())
                : ExitObjective.stageTwo(dz, z, ce, this.targets, steps, n, validTokens, objective.k(),
                objective.gamma());
        if (!Double.isFinite(loss)) {
            throw new NonFiniteException(diagnoseNonFinite(params, loss));
        }
        forwardDone = true;
        return new StepReport(loss, meanPerStep(ce), meanPerStep(p), validTokens);
    }

    /**
     * Back-propagates the objective of the last {@link #forward} and adds the gradient into
     * {@code grads} (same layout as the parameters). Stage II adds gradients for the exit gate only.
     */
    public void backward(float[] params, float[] grads) {
        if (!forwardDone) {
            throw new IllegalStateException("backward needs a successful forward first");
        }
        if (grads.length != paramCount) {
            throw new IllegalArgumentException("grads: expected length " + paramCount + ", got " + grads.length);
        }
        TensorView gw = layout.gateWeight();
        int gb = layout.gateBias().off();
        boolean lm = objective.trainsLm();
        Arrays.fill(gH, 0, n * d, 0);
        for (int t = steps - 1; t >= 0; t--) {
            // the head and the gate read h_t; a later step's gradient is already in gH
            Matmul.backwardWeight(grads, gw.off(), dz, t * n, hn[t], 0, n, d, 1);
            for (int r = 0; r < n; r++) {
                grads[gb] += dz[t * n + r];
            }
            if (!lm) {
                continue;
            }
            Matmul.backwardInput(gH, 0, dz, t * n, params, gw.off(), n, d, 1);
            LmHeadLoss.backward(gH, grads, layout.lmHead().off(), dce, t * n, lse, t * n, headScratch,
                    headBlock, hn[t], params, layout.lmHead().off(), targets, n, d, vocab);
            Arrays.fill(gTmp, 0, n * d, 0);
            RmsNorm.backward(gTmp, grads, layout.finalNorm().off(), gH, xt[t], rstdF[t], params,
                    layout.finalNorm().off(), n, d);
            swapHidden();
            for (int l = layers - 1; l >= 0; l--) {
                layerBackward(params, grads, layout.layer(l), t * layers + l);
            }
        }
        if (lm) {
            Embedding.backward(grads, layout.embed().off(), gH, tokens, n, d);
        }
    }

    /** The (N,V) logits of recurrent step {@code t} (0-based) from the last forward with keepLogits. */
    public float[] logits(int t) {
        if (keptLogits == null || keptLogits[t] == null) {
            throw new IllegalStateException("logits were not kept: pass keepLogits = true to forward");
        }
        return keptLogits[t];
    }

    /** The exit gate's lambda_t per row from the last forward, (T,N). */
    public float[] exitLambdas() {
        float[] lam = new float[steps * n];
        for (int i = 0; i < lam.length; i++) {
            lam[i] = (float) ExitObjective.sigmoid(z[i]);
        }
        return lam;
    }

    /** Per-row cross-entropy of every step from the last forward, (T,N); 0 where there is no target. */
    public float[] crossEntropies() {
        return Arrays.copyOf(ce, steps * n);
    }

    private void layerForward(float[] w, TensorView[] lt, int i, float[] out, float eps) {
        int dd = d;
        RmsNorm.forward(a1[i], rstd1[i], x0[i], w, lt[ParamLayout.IN_NORM].off(), n, dd, eps);
        Matmul.forward(q[i], 0, a1[i], 0, w, lt[ParamLayout.Q].off(), n, dd, dd);
        Matmul.forward(k[i], 0, a1[i], 0, w, lt[ParamLayout.K].off(), n, dd, dd);
        Matmul.forward(v[i], 0, a1[i], 0, w, lt[ParamLayout.V].off(), n, dd, dd);
        Rope.forward(q[i], cos, sin, n, seqLen, heads, hd);
        Rope.forward(k[i], cos, sin, n, seqLen, heads, hd);
        CausalAttention.forward(att[i], probs[i], q[i], k[i], v[i], batch, seqLen, heads, hd);
        Matmul.forward(o[i], 0, att[i], 0, w, lt[ParamLayout.O].off(), n, dd, dd);
        RmsNorm.forward(x1[i], rstd2[i], o[i], w, lt[ParamLayout.IN_NORM_2].off(), n, dd, eps);
        add(x1[i], x0[i], n * dd);
        RmsNorm.forward(f1[i], rstd3[i], x1[i], w, lt[ParamLayout.POST_NORM].off(), n, dd, eps);
        Matmul.forward(g[i], 0, f1[i], 0, w, lt[ParamLayout.GATE].off(), n, dd, ffn);
        Matmul.forward(u[i], 0, f1[i], 0, w, lt[ParamLayout.UP].off(), n, dd, ffn);
        SwiGlu.forward(m[i], g[i], u[i], n * ffn);
        Matmul.forward(f[i], 0, m[i], 0, w, lt[ParamLayout.DOWN].off(), n, ffn, dd);
        RmsNorm.forward(out, rstd4[i], f[i], w, lt[ParamLayout.POST_NORM_2].off(), n, dd, eps);
        add(out, x1[i], n * dd);
    }

    /** gH holds dL/d(layer output) on entry and dL/d(layer input) on exit. */
    private void layerBackward(float[] w, float[] gr, TensorView[] lt, int i) {
        int nd = n * d, nf = n * ffn;
        // FFN half: out = x1 + norm4(down(swiglu(norm3(x1))))
        zero(gA, nd);
        RmsNorm.backward(gA, gr, lt[ParamLayout.POST_NORM_2].off(), gH, f[i], rstd4[i], w,
                lt[ParamLayout.POST_NORM_2].off(), n, d);
        zero(gM, nf);
        Matmul.backwardInput(gM, 0, gA, 0, w, lt[ParamLayout.DOWN].off(), n, ffn, d);
        Matmul.backwardWeight(gr, lt[ParamLayout.DOWN].off(), gA, 0, m[i], 0, n, ffn, d);
        zero(gG, nf);
        zero(gU, nf);
        SwiGlu.backward(gG, gU, gM, g[i], u[i], nf);
        zero(gB, nd);
        Matmul.backwardInput(gB, 0, gG, 0, w, lt[ParamLayout.GATE].off(), n, d, ffn);
        Matmul.backwardInput(gB, 0, gU, 0, w, lt[ParamLayout.UP].off(), n, d, ffn);
        Matmul.backwardWeight(gr, lt[ParamLayout.GATE].off(), gG, 0, f1[i], 0, n, d, ffn);
        Matmul.backwardWeight(gr, lt[ParamLayout.UP].off(), gU, 0, f1[i], 0, n, d, ffn);
        // gH (the residual path) now accumulates dL/dx1
        RmsNorm.backward(gH, gr, lt[ParamLayout.POST_NORM].off(), gB, x1[i], rstd3[i], w,
                lt[ParamLayout.POST_NORM].off(), n, d);

        // attention half: x1 = x0 + norm2(o_proj(attn(rope(q), rope(k), v)))
        zero(gA, nd);
        RmsNorm.backward(gA, gr, lt[ParamLayout.IN_NORM_2].off(), gH, o[i], rstd2[i], w,
                lt[ParamLayout.IN_NORM_2].off(), n, d);
        zero(gB, nd);
        Matmul.backwardInput(gB, 0, gA, 0, w, lt[ParamLayout.O].off(), n, d, d);
        Matmul.backwardWeight(gr, lt[ParamLayout.O].off(), gA, 0, att[i], 0, n, d, d);
        zero(gQ, nd);
        zero(gK, nd);
        zero(gV, nd);
        CausalAttention.backward(gQ, gK, gV, gB, probs[i], q[i], k[i], v[i], batch, seqLen, heads, hd);
        Rope.backward(gQ, cos, sin, n, seqLen, heads, hd);
        Rope.backward(gK, cos, sin, n, seqLen, heads, hd);
        zero(gA, nd);
        Matmul.backwardInput(gA, 0, gQ, 0, w, lt[ParamLayout.Q].off(), n, d, d);
        Matmul.backwardInput(gA, 0, gK, 0, w, lt[ParamLayout.K].off(), n, d, d);
        Matmul.backwardInput(gA, 0, gV, 0, w, lt[ParamLayout.V].off(), n, d, d);
        Matmul.backwardWeight(gr, lt[ParamLayout.Q].off(), gQ, 0, a1[i], 0, n, d, d);
        Matmul.backwardWeight(gr, lt[ParamLayout.K].off(), gK, 0, a1[i], 0, n, d, d);
        Matmul.backwardWeight(gr, lt[ParamLayout.V].off(), gV, 0, a1[i], 0, n, d, d);
        RmsNorm.backward(gH, gr, lt[ParamLayout.IN_NORM].off(), gA, x0[i], rstd1[i], w,
                lt[ParamLayout.IN_NORM].off(), n, d);
    }

    private void swapHidden() {
        float[] s = gH;
        gH = gTmp;
        gTmp = s;
    }

    private static void add(float[] acc, float[] x, int count) {
        for (int i = 0; i < count; i++) {
            acc[i] += x[i];
        }
    }

    private static void zero(float[] a, int count) {
        Arrays.fill(a, 0, count, 0);
    }

    private double[] meanPerStep(float[] perRow) {
        double[] mean = new double[steps];
        for (int t = 0; t < steps; t++) {
            double s = 0;
            for (int r = 0; r < n; r++) {
                if (targets[r] >= 0) {
                    s += perRow[t * n + r];
                }
            }
            mean[t] = s / validTokens;
        }
        return mean;
    }

    private void checkInputs(float[] params, int[] tokens, int[] targets, int batch, int seqLen) {
        if (params.length != paramCount) {
            throw new IllegalArgumentException("params: expected length " + paramCount + " for " + cfg
                    + ", got " + params.length);
        }
        this.validTokens = TokenBatch.validate(tokens, targets, batch, seqLen, vocab);
    }

    private String diagnoseNonFinite(float[] params, double loss) {
        for (TensorView t : layout.tensors()) {
            for (int i = t.off(); i < t.off() + t.len(); i++) {
                if (!Float.isFinite(params[i])) {
                    return "loss is " + loss + ": parameter " + t.name() + " holds " + params[i]
                            + " at element " + (i - t.off());
                }
            }
        }
        for (int t = 0; t < steps; t++) {
            for (int r = 0; r < n; r++) {
                if (!Float.isFinite(ce[t * n + r]) || !Float.isFinite(z[t * n + r])) {
                    return "loss is " + loss + ": recurrent step " + (t + 1) + " produced a non-finite "
                            + "cross-entropy or gate logit at row " + r + " although every parameter is finite";
                }
            }
        }
        return "loss is " + loss + " although every parameter, cross-entropy and gate logit is finite";
    }

    private void ensureWorkspace(int b, int s, boolean keepLogits) {
        if (b != batch || s != seqLen) {
            batch = b;
            seqLen = s;
            n = b * s;
            int cells = steps * layers;
            int nd = n * d, nf = n * ffn;
            x0 = alloc(cells, nd);
            a1 = alloc(cells, nd);
            q = alloc(cells, nd);
            k = alloc(cells, nd);
            v = alloc(cells, nd);
            probs = alloc(cells, b * heads * s * s);
            att = alloc(cells, nd);
            o = alloc(cells, nd);
            x1 = alloc(cells, nd);
            f1 = alloc(cells, nd);
            g = alloc(cells, nf);
            u = alloc(cells, nf);
            m = alloc(cells, nf);
            f = alloc(cells, nd);
            rstd1 = alloc(cells, n);
            rstd2 = alloc(cells, n);
            rstd3 = alloc(cells, n);
            rstd4 = alloc(cells, n);
            xt = alloc(steps, nd);
            rstdF = alloc(steps, n);
            hn = alloc(steps, nd);
            z = new float[steps * n];
            lse = new float[steps * n];
            ce = new float[steps * n];
            p = new float[steps * n];
            dz = new float[steps * n];
            dce = new float[steps * n];
            headBlock = LmHeadLoss.blockRows(n, vocab);
            headScratch = new float[headBlock * vocab];
            gH = new float[nd];
            gTmp = new float[nd];
            gA = new float[nd];
            gB = new float[nd];
            gQ = new float[nd];
            gK = new float[nd];
            gV = new float[nd];
            gM = new float[nf];
            gG = new float[nf];
            gU = new float[nf];
            cos = new float[s * hd / 2];
            sin = new float[s * hd / 2];
            keptLogits = null;
        }
        Rope.tables(cos, sin, s, hd, cfg.ropeBase());
        if (keepLogits && keptLogits == null) {
            keptLogits = alloc(steps, n * vocab);
        }
    }

    private static float[][] alloc(int count, int size) {
        float[][] a = new float[count][];
        for (int i = 0; i < count; i++) {
            a[i] = new float[size];
        }
        return a;
    }
}
