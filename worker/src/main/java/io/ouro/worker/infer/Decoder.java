package io.ouro.worker.infer;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.reference.RowOps;

import java.util.Arrays;

import static io.ouro.worker.infer.DecodeOps.A1;
import static io.ouro.worker.infer.DecodeOps.ATT;
import static io.ouro.worker.infer.DecodeOps.F;
import static io.ouro.worker.infer.DecodeOps.F1;
import static io.ouro.worker.infer.DecodeOps.G;
import static io.ouro.worker.infer.DecodeOps.H;
import static io.ouro.worker.infer.DecodeOps.LOGITS;
import static io.ouro.worker.infer.DecodeOps.M;
import static io.ouro.worker.infer.DecodeOps.O;
import static io.ouro.worker.infer.DecodeOps.U;
import static io.ouro.worker.infer.DecodeOps.X1;

/**
 * The LoopLM's forward pass for one new token at a time, over a {@link KvCache}: the same math as the training step
 * ({@code LoopSchedule}'s forward) on one row, with attention over the cached earlier tokens. Each step t runs the L
 * layers, the final norm (whose output feeds step t + 1), the exit gate and, where wanted, the LM head; the token stops
 * looping where its {@link ExitPolicy} says, unless the caller asks for every step (prefill). This is the one decoding
 * schedule; the ops are {@link DecodeOps} (Java or OpenCL).
 */
public final class Decoder {

    /** One token's outcome: the 0-based exit step, the logits there, and per step the gate's lambda. */
    public record Token(int exitStep, float[] logits, double[] lambda, float[][] stepLogits) {
    }

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final DecodeOps ops;
    private final KvCache cache;
    private final int d, ffn, vocab, steps, layers;

    /** A decoder on the Java backend. */
    public Decoder(LoopConfig cfg, float[] params, KvCache.Mode mode) {
        this(new JavaDecodeOps(cfg, params), mode);
    }

    /** A decoder over {@code ops} (whose cache slots it takes over, starting empty). */
    public Decoder(DecodeOps ops, KvCache.Mode mode) {
        this.cfg = ops.config();
        this.layout = new ParamLayout(cfg);
        this.ops = ops;
        this.d = cfg.hidden();
        this.ffn = cfg.ffn();
        this.vocab = cfg.vocab();
        this.steps = cfg.steps();
        this.layers = cfg.layers();
        this.cache = new KvCache(ops, mode);
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
        ops.embed(H, token);
        // the gate's lambda is needed as each step ends only for Q-exit; otherwise it is read once at the end
        boolean eager = policy.kind() == ExitPolicy.Kind.Q_EXIT;
        double survive = 1;
        double[] lambda = new double[steps];
        float[][] stepLogits = keepStepLogits ? new float[steps][] : null;
        float[] exitLogits = null;
        int exit = -1, computed = 0;
        int[] slots = new int[layers];
        for (int t = 0; t < steps; t++) {
            for (int l = 0; l < layers; l++) {
                slots[l] = cache.slot(t, l);
            }
            if (!ops.loopStep(t, pos, slots)) {
                for (int l = 0; l < layers; l++) {
                    layer(t, l, pos);
                }
                ops.rmsnorm(H, H, layout.finalNorm());
                ops.linear(DecodeOps.gate(t), H, layout.gateWeight(), d, 1);
                ops.biasAdd(DecodeOps.gate(t), layout.gateBias());
            }
            computed = t + 1;
            double cdf = Double.NaN;
            if (eager) {
                lambda[t] = RowOps.sigmoid(ops.readGates(t + 1)[t]);
                cdf = 1 - survive * (1 - lambda[t]);
                survive *= 1 - lambda[t];
            }
            boolean exitsHere = exit < 0 && policy.exitsAfter(t, steps, cdf);
            float[] lg = null;
            if (keepStepLogits || exitsHere) {
                ops.linear(LOGITS, H, layout.lmHead(), d, vocab);
                lg = ops.read(LOGITS, vocab);
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
        if (!eager) {
            float[] z = ops.readGates(computed);
            for (int t = 0; t < computed; t++) {
                lambda[t] = RowOps.sigmoid(z[t]);
            }
        }
        cache.append(computed);
        return new Token(exit, exitLogits, Arrays.copyOf(lambda, computed), stepLogits);
    }

    // h (D) through layer l of step t at position pos; keeps the layer's k, v in the ops' key/value (t, l). The fused
    // loop step of an implementation (DecodeOps.loopStep) is this, the final norm and the gate, in the same order.
    private void layer(int t, int l, int pos) {
        TensorView[] w = layout.layer(l);
        int q = DecodeOps.query(cfg, t, l), k = DecodeOps.key(cfg, t, l), v = DecodeOps.value(cfg, t, l);
        ops.rmsnorm(A1, H, w[ParamLayout.IN_NORM]);
        ops.linears(new int[] {q, k, v}, A1, new TensorView[] {w[ParamLayout.Q], w[ParamLayout.K], w[ParamLayout.V]},
                d, d);
        ops.rope(q, 2, pos); // q and k
        ops.attend(ATT, q, cache.slot(t, l), pos, k, v);
        ops.linear(O, ATT, w[ParamLayout.O], d, d);
        ops.rmsnormAdd(X1, O, w[ParamLayout.IN_NORM_2], H, d);
        ops.rmsnorm(F1, X1, w[ParamLayout.POST_NORM]);
        ops.linears(new int[] {G, U}, F1, new TensorView[] {w[ParamLayout.GATE], w[ParamLayout.UP]}, d, ffn);
        ops.swiglu(M, G, U, ffn);
        ops.linear(F, M, w[ParamLayout.DOWN], ffn, d);
        ops.rmsnormAdd(H, F, w[ParamLayout.POST_NORM_2], X1, d);
    }
}
