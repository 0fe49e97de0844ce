package io.ouro.worker.infer;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.reference.Rope;
import io.ouro.worker.reference.RowOps;

import java.util.Arrays;

/**
 * The LoopLM's forward pass for one new token at a time, over a {@link KvCache}: the same math as the training step
 * ({@code LoopSchedule}'s forward) on one row, with attention over the cached earlier tokens. Each step t runs the L
 * layers, the final norm (whose output feeds step t + 1), the exit gate and, where wanted, the LM head; the token stops
 * looping where its {@link ExitPolicy} says, unless the caller asks for every step (prefill).
 */
public final class Decoder {

    /** One token's outcome: the 0-based exit step, the logits there, and per step the gate's lambda. */
    public record Token(int exitStep, float[] logits, double[] lambda, float[][] stepLogits) {
    }

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final float[] params;
    private final KvCache cache;
    private final int d, ffn, vocab, steps, layers, heads, hd;
    private final float eps;
    private float[] cos = new float[0], sin = new float[0];
    private int ropeLen;
    // per-token scratch
    private final float[] h, a1, q, att, o, x1, f1, g, u, m, f, z = new float[1];
    private final float[][][] ks, vs;

    public Decoder(LoopConfig cfg, float[] params, KvCache.Mode mode) {
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        if (params.length != layout.arraySize()) {
            throw new IllegalArgumentException("params: expected " + layout.arraySize() + " for " + cfg + ", got "
                    + params.length);
        }
        this.params = params;
        this.d = cfg.hidden();
        this.ffn = cfg.ffn();
        this.vocab = cfg.vocab();
        this.steps = cfg.steps();
        this.layers = cfg.layers();
        this.heads = cfg.heads();
        this.hd = cfg.headDim();
        this.eps = (float) cfg.normEps();
        this.cache = new KvCache(steps, layers, d, mode);
        h = new float[d];
        a1 = new float[d];
        q = new float[d];
        att = new float[d];
        o = new float[d];
        x1 = new float[d];
        f1 = new float[d];
        f = new float[d];
        g = new float[ffn];
        u = new float[ffn];
        m = new float[ffn];
        ks = new float[steps][layers][d];
        vs = new float[steps][layers][d];
    }

    public KvCache cache() {
        return cache;
    }

    public LoopConfig config() {
        return cfg;
    }

    /**
     * Feeds {@code token} at the next position. With {@code allSteps} every step runs (prefill: the cache gets every
     * step's keys and values) and the policy only picks whose logits are returned; otherwise looping stops at the
     * exit step. With {@code keepStepLogits} the logits of every computed step are returned too.
     */
    public Token next(int token, ExitPolicy policy, boolean allSteps, boolean keepStepLogits) {
        if (token < 0 || token >= vocab) {
            throw new IllegalArgumentException("token id " + token + " outside the vocabulary [0, " + vocab + ")");
        }
        int pos = cache.length();
        float[] cosRow = new float[hd / 2], sinRow = new float[hd / 2];
        ropeRow(pos, cosRow, sinRow);
        RowOps.embed(h, params, layout.embed().off(), token, d);
        double survive = 1;
        double[] lambda = new double[steps];
        float[][] stepLogits = keepStepLogits ? new float[steps][] : null;
        float[] exitLogits = null;
        int exit = -1, computed = 0;
        for (int t = 0; t < steps; t++) {
            for (int l = 0; l < layers; l++) {
                layer(t, l, pos, cosRow, sinRow);
            }
            RowOps.rmsnorm(a1, h, params, layout.finalNorm().off(), d, eps);
            System.arraycopy(a1, 0, h, 0, d);
            computed = t + 1;
            RowOps.linear(z, h, params, layout.gateWeight().off(), d, 1);
            lambda[t] = RowOps.sigmoid(z[0] + params[layout.gateBias().off()]);
            boolean exitsHere = exit < 0 && policy.exitsAfter(t, steps, 1 - survive * (1 - lambda[t]));
            survive *= 1 - lambda[t];
            float[] lg = null;
            if (keepStepLogits || exitsHere) {
                lg = new float[vocab];
                RowOps.linear(lg, h, params, layout.lmHead().off(), d, vocab);
            }
            if (keepStepLogits) {
                stepLogits[t] = lg;
            }
            if (exitsHere) {
                exit = t;
                exitLogits = lg;
                if (!allSteps) {
                    break;
                }
            }
        }
        cache.append(ks, vs, computed);
        return new Token(exit, exitLogits, Arrays.copyOf(lambda, computed), stepLogits);
    }

    // h (D) through layer l of step t at position pos; keeps the layer's k, v in ks[t][l], vs[t][l]
    private void layer(int t, int l, int pos, float[] cosRow, float[] sinRow) {
        TensorView[] w = layout.layer(l);
        float[] k = ks[t][l], v = vs[t][l];
        RowOps.rmsnorm(a1, h, params, w[ParamLayout.IN_NORM].off(), d, eps);
        RowOps.linear(q, a1, params, w[ParamLayout.Q].off(), d, d);
        RowOps.linear(k, a1, params, w[ParamLayout.K].off(), d, d);
        RowOps.linear(v, a1, params, w[ParamLayout.V].off(), d, d);
        RowOps.ropeAt(q, cosRow, sinRow, heads, hd);
        RowOps.ropeAt(k, cosRow, sinRow, heads, hd);
        RowOps.attendCached(att, q, cache.keys(t, l), cache.values(t, l), pos, k, v, heads, hd);
        RowOps.linear(o, att, params, w[ParamLayout.O].off(), d, d);
        RowOps.rmsnorm(x1, o, params, w[ParamLayout.IN_NORM_2].off(), d, eps);
        add(x1, h);
        RowOps.rmsnorm(f1, x1, params, w[ParamLayout.POST_NORM].off(), d, eps);
        RowOps.linear(g, f1, params, w[ParamLayout.GATE].off(), d, ffn);
        RowOps.linear(u, f1, params, w[ParamLayout.UP].off(), d, ffn);
        RowOps.swiglu(m, g, u, ffn);
        RowOps.linear(f, m, params, w[ParamLayout.DOWN].off(), ffn, d);
        RowOps.rmsnorm(h, f, params, w[ParamLayout.POST_NORM_2].off(), d, eps);
        add(h, x1);
    }

    private static void add(float[] acc, float[] x) {
        for (int i = 0; i < acc.length; i++) {
            acc[i] += x[i];
        }
    }

    // the RoPE table rows of position pos, from the training step's tables (grown by doubling)
    private void ropeRow(int pos, float[] cosRow, float[] sinRow) {
        int half = hd / 2;
        if (pos >= ropeLen) {
            ropeLen = Math.max(64, Integer.highestOneBit(pos) * 2);
            cos = new float[ropeLen * half];
            sin = new float[ropeLen * half];
            Rope.tables(cos, sin, ropeLen, hd, cfg.ropeBase());
        }
        System.arraycopy(cos, pos * half, cosRow, 0, half);
        System.arraycopy(sin, pos * half, sinRow, 0, half);
    }
}
