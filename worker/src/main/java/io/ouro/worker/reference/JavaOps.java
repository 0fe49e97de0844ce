package io.ouro.worker.reference;


import io.ouro.worker.model.AdamW;
import io.ouro.worker.model.Bf16;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.step.Region;
import io.ouro.worker.step.StepOps;
import io.ouro.worker.util.Parallel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The step's ops in plain Java: the reference every other {@link StepOps} is tested against. Each region is its
 * own Java array, so the activations have no size limit beyond the heap; ops whose kernels take whole arrays
 * require regions at offset 0. Parameters, gradients and Adam's moments are the caller's arrays ({@link #bind}).
 * Not thread-safe; the ops themselves use all cores.
 */
public final class JavaOps implements StepOps {

    private final double ropeBase;
    private final List<float[]> arrays = new ArrayList<>();
    private float[] params, grads, m, v;
    private int[] tokens = new int[0], targets = new int[0];
    private float[] cos = new float[0], sin = new float[0];
    private int ropeLen = -1, ropeHd = -1;
    /** Per region: a bfloat16 stash region. */
    private boolean[] rounded = new boolean[0];

    public JavaOps(LoopConfig cfg) {
        this.ropeBase = cfg.ropeBase();
    }

    /** The parameter and gradient arrays the ops read and write (flat, laid out by ParamLayout). */
    public void bind(float[] params, float[] grads) {
        this.params = params;
        this.grads = grads;
    }

    /** Adam's moment arrays, for {@link #adamw}. */
    public void bindMoments(float[] m, float[] v) {
        this.m = m;
        this.v = v;
    }

    /**
     * Every region is an array of its own; a stash region differs only in bfloat16 mode, where a copy into it rounds
     * (the values stay in float arrays).
     */
    @Override
    public Region[] allocate(long[] sizes, boolean[] stash, boolean bf16Stash) {
        arrays.clear();
        rounded = new boolean[sizes.length];
        Region[] out = new Region[sizes.length];
        for (int i = 0; i < sizes.length; i++) {
            arrays.add(new float[Math.toIntExact(sizes[i])]);
            out[i] = new Region(i, 0);
            rounded[i] = bf16Stash && stash[i];
        }
        return out;
    }

    @Override
    public long attentionStateSize(int batch, int seqLen, int heads) {
        return (long) batch * heads * seqLen * seqLen;
    }

    @Override
    public void setBatch(int[] tokens, int[] targets) {
        this.tokens = tokens;
        this.targets = targets;
    }

    @Override
    public float[] read(Region r, int count) {
        return Arrays.copyOfRange(a(r), r.offset(), r.offset() + count);
    }

    @Override
    public void write(Region r, float[] values) {
        System.arraycopy(values, 0, a(r), r.offset(), values.length);
    }

    @Override
    public void embedForward(Region h, TensorView table, int n, int d) {
        Embedding.forward(whole(h), params, table.off(), tokens, n, d);
    }

    @Override
    public void embedBackward(TensorView table, Region dh, int n, int d) {
        Embedding.backward(grads, table.off(), whole(dh), tokens, n, d);
    }

    @Override
    public void rmsnormForward(Region y, Region rstd, Region x, TensorView w, int n, int d, float eps) {
        RmsNorm.forward(a(y), y.offset(), a(rstd), rstd.offset(), a(x), x.offset(), params, w.off(), n, d, eps);
    }

    @Override
    public void rmsnormBackward(Region dx, Region dy, Region x, Region rstd, TensorView w, int n, int d) {
        RmsNorm.backward(a(dx), dx.offset(), grads, w.off(), a(dy), dy.offset(), a(x), x.offset(), a(rstd),
                rstd.offset(), params, w.off(), n, d);
    }

    @Override
    public void linearForward(Region y, Region x, TensorView w, int n, int in, int out) {
        Matmul.forward(a(y), y.offset(), a(x), x.offset(), params, w.off(), n, in, out);
    }

    @Override
    public void linearBackwardInput(Region dx, Region dy, TensorView w, int n, int in, int out) {
        Matmul.backwardInput(a(dx), dx.offset(), a(dy), dy.offset(), params, w.off(), n, in, out);
    }

    @Override
    public void linearBackwardWeight(TensorView w, Region dy, Region x, int n, int in, int out) {
        Matmul.backwardWeight(grads, w.off(), a(dy), dy.offset(), a(x), x.offset(), n, in, out);
    }

    @Override
    public void biasAdd(Region y, TensorView bias, int n) {
        float[] ya = a(y);
        float b = params[bias.off()];
        for (int i = 0; i < n; i++) {
            ya[y.offset() + i] += b;
        }
    }

    @Override
    public void biasBackward(TensorView bias, Region dy, int n) {
        float[] g = a(dy);
        for (int i = 0; i < n; i++) {
            grads[bias.off()] += g[dy.offset() + i];
        }
    }

    @Override
    public void rope(Region x, int n, int seqLen, int heads, int hd, boolean forward) {
        if (seqLen != ropeLen || hd != ropeHd) {
            cos = new float[seqLen * hd / 2];
            sin = new float[seqLen * hd / 2];
            Rope.tables(cos, sin, seqLen, hd, ropeBase);
            ropeLen = seqLen;
            ropeHd = hd;
        }
        if (forward) {
            Rope.forward(whole(x), cos, sin, n, seqLen, heads, hd);
        } else {
            Rope.backward(whole(x), cos, sin, n, seqLen, heads, hd);
        }
    }

    @Override
    public void attentionForward(Region out, Region state, Region q, Region k, Region v, int batch, int seqLen,
                                 int heads, int hd) {
        CausalAttention.forward(whole(out), whole(state), whole(q), whole(k), whole(v), batch, seqLen, heads, hd);
    }

    @Override
    public void attentionBackward(Region dq, Region dk, Region dv, Region dout, Region out, Region state, Region q,
                                  Region k, Region v, int batch, int seqLen, int heads, int hd) {
        CausalAttention.backward(whole(dq), whole(dk), whole(dv), whole(dout), whole(state), whole(q), whole(k),
                whole(v), batch, seqLen, heads, hd);
    }

    @Override
    public void swigluForward(Region m, Region g, Region u, int count) {
        SwiGlu.forward(whole(m), whole(g), whole(u), count);
    }

    @Override
    public void swigluBackward(Region dg, Region du, Region dm, Region g, Region u, int count) {
        SwiGlu.backward(whole(dg), whole(du), whole(dm), whole(g), whole(u), count);
    }

    @Override
    public void add(Region acc, Region x, int count) {
        float[] y = a(acc), s = a(x);
        int yo = acc.offset(), so = x.offset();
        for (int i = 0; i < count; i++) {
            y[yo + i] += s[so + i];
        }
    }

    @Override
    public void copy(Region dst, Region src, int count) {
        System.arraycopy(a(src), src.offset(), a(dst), dst.offset(), count);
        if (dst.array() < rounded.length && rounded[dst.array()]) {
            float[] x = a(dst);
            for (int i = dst.offset(); i < dst.offset() + count; i++) {
                x[i] = Bf16.round(x[i]);
            }
        }
    }

    @Override
    public void zero(Region r, int count) {
        Arrays.fill(a(r), r.offset(), r.offset() + count, 0);
    }

    @Override
    public void crossEntropyForward(Region logits, Region lse, Region ce, int first, int rows, int vocab) {
        float[] lg = a(logits), ls = a(lse), c = a(ce);
        int lo = logits.offset(), lso = lse.offset(), co = ce.offset();
        Parallel.range(rows, Matmul.grain(3L * vocab), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int row = lo + r * vocab;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < vocab; j++) {
                    max = Math.max(max, lg[row + j]);
                }
                double sum = 0;
                for (int j = 0; j < vocab; j++) {
                    sum += Math.exp(lg[row + j] - max);
                }
                float l = (float) (max + Math.log(sum));
                ls[lso + r] = l;
                int t = targets[first + r];
                c[co + r] = t < 0 ? 0 : l - lg[row + t];
            }
        });
    }

    @Override
    public void crossEntropyBackward(Region logits, Region lse, Region dce, int first, int rows, int vocab) {
        float[] lg = a(logits), ls = a(lse), dc = a(dce);
        int lo = logits.offset(), lso = lse.offset(), dco = dce.offset();
        Parallel.range(rows, Matmul.grain(2L * vocab), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int row = lo + r * vocab;
                int t = targets[first + r];
                float g = t < 0 ? 0 : dc[dco + r];
                float l = ls[lso + r];
                for (int j = 0; j < vocab; j++) {
                    lg[row + j] = g * (float) Math.exp(lg[row + j] - l);
                }
                if (t >= 0) {
                    lg[row + t] -= g;
                }
            }
        });
    }

    @Override
    public double[] exitObjective(Region z, Region ce, Region p, Region dz, Region dce, int n, int steps,
                                  Objective objective, int tokens) {
        float[] za = whole(z), cea = whole(ce), pa = whole(p), dza = whole(dz), dcea = whole(dce);
        ExitObjective.distribution(pa, za, targets, steps, n);
        double loss = objective.trainsLm()
                ? ExitObjective.stageOne(dza, dcea, za, cea, targets, steps, n, tokens, objective.beta())
                : ExitObjective.stageTwo(dza, za, cea, targets, steps, n, tokens, objective.k(), objective.gamma());
        double[] out = new double[1 + 2 * steps];
        out[0] = loss;
        for (int t = 0; t < steps; t++) {
            double c = 0, e = 0;
            for (int r = 0; r < n; r++) {
                if (targets[r] >= 0) {
                    c += cea[t * n + r];
                    e += pa[t * n + r];
                }
            }
            out[1 + t] = c;
            out[1 + steps + t] = e;
        }
        return out;
    }

    @Override
    public double gradSumSquares() {
        double ss = 0;
        for (float g : grads) {
            ss += (double) g * g;
        }
        return ss;
    }

    @Override
    public void scaleGrads(float factor) {
        for (int i = 0; i < grads.length; i++) {
            grads[i] *= factor;
        }
    }

    @Override
    public void divideGrads(float divisor) {
        for (int i = 0; i < grads.length; i++) {
            grads[i] /= divisor;
        }
    }

    @Override
    public void zeroGrads() {
        Arrays.fill(grads, 0);
    }

    @Override
    public void adamw(TensorView t, float keep, float beta1, float beta2, float stepSize, float sqrtBc2, float eps) {
        AdamW.update(params, grads, m, v, t.off(), t.off(), t.len(), keep, beta1, beta2, 1 - beta1, 1 - beta2, stepSize,
                sqrtBc2, eps);
    }

    /** The Java array behind a region (tests that perturb activations in place). */
    float[] array(Region r) {
        return arrays.get(r.array());
    }

    private float[] a(Region r) {
        return arrays.get(r.array());
    }

    // the kernels of these ops take whole arrays
    private float[] whole(Region r) {
        if (r.offset() != 0) {
            throw new IllegalArgumentException("JavaOps: this op needs a region at offset 0, got " + r);
        }
        return arrays.get(r.array());
    }
}
