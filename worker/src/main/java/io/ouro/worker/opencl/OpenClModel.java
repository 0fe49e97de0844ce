package io.ouro.worker.opencl;

import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.model.DecayPolicy;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.NonFiniteException;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.model.TokenBatch;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.reference.Rope;

import java.util.function.Predicate;

/**
 * The LoopLM on an OpenCL device: the same forward and backward as the reference backend's
 * {@code ReferenceModel}, op for op, with parameters, gradients, Adam moments and activations resident
 * on the device. Per step only the token and target ids go in and the metrics (per-token losses, per-step
 * sums, gradient-norm partials) come out; gradients come out when {@link #gradients()} is called for the
 * all-reduce. The workspace is sized for one (batch, seqLen) at construction.
 */
public final class OpenClModel implements AutoCloseable {

    private static final int NORM_PARTIALS = 256;

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final OpenClOps ops;
    private final int batch, seqLen, n, d, ffn, vocab, layers, steps, heads, hd, block;
    private final boolean keepLogits;

    // activation arena offsets; per (step, layer) cell i at base + i * stride. Attention keeps one
    // log-sum-exp per (sequence, head, query) (attLse), never the S x S probabilities.
    private final int x0, a1, q, k, v, att, o, x1, f1, f, g, u, m, attLse, rstd1, rstd2, rstd3, rstd4;
    private final int xt, rstdF, hn, z, lse, ce, p, dz, dce, scratch, logits;
    /**
     * CPU devices only: the LM head's weight transposed, (D,V), made once per backward pass, and the region
     * where OpenClOps.gemm transposes the operands of the other products.
     */
    private final boolean cpuHead;
    private final int headT, gemmScratch;
    private final int gH0, gH1, gA, gB, gQ, gK, gV, gM, gG, gU;
    private final int nd, nf, pp;
    private int gH, gTmp;

    private Objective objective;
    private int validTokens;
    private boolean forwardDone;
    private long adamStep;

    public OpenClModel(LoopConfig cfg, OpenCLDevice device, int batch, int seqLen, boolean keepLogits) {
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        this.batch = batch;
        this.seqLen = seqLen;
        this.n = batch * seqLen;
        this.d = cfg.hidden();
        this.ffn = cfg.ffn();
        this.vocab = cfg.vocab();
        this.layers = cfg.layers();
        this.steps = cfg.steps();
        this.heads = cfg.heads();
        this.hd = cfg.headDim();
        this.block = Math.max(1, Math.min(n, Math.max(64, (1 << 24) / vocab)));
        this.keepLogits = keepLogits;
        nd = n * d;
        nf = n * ffn;
        pp = batch * heads * seqLen;
        int cells = steps * layers;
        long[] cur = {0};
        x0 = alloc(cur, (long) cells * nd);
        a1 = alloc(cur, (long) cells * nd);
        q = alloc(cur, (long) cells * nd);
        k = alloc(cur, (long) cells * nd);
        v = alloc(cur, (long) cells * nd);
        att = alloc(cur, (long) cells * nd);
        o = alloc(cur, (long) cells * nd);
        x1 = alloc(cur, (long) cells * nd);
        f1 = alloc(cur, (long) cells * nd);
        f = alloc(cur, (long) cells * nd);
        g = alloc(cur, (long) cells * nf);
        u = alloc(cur, (long) cells * nf);
        m = alloc(cur, (long) cells * nf);
        attLse = alloc(cur, (long) cells * pp);
        rstd1 = alloc(cur, (long) cells * n);
        rstd2 = alloc(cur, (long) cells * n);
        rstd3 = alloc(cur, (long) cells * n);
        rstd4 = alloc(cur, (long) cells * n);
        xt = alloc(cur, (long) steps * nd);
        rstdF = alloc(cur, (long) steps * n);
        hn = alloc(cur, (long) steps * nd);
        z = alloc(cur, (long) steps * n);
        lse = alloc(cur, (long) steps * n);
        ce = alloc(cur, (long) steps * n);
        p = alloc(cur, (long) steps * n);
        dz = alloc(cur, (long) steps * n);
        dce = alloc(cur, (long) steps * n);
        scratch = alloc(cur, (long) block * vocab);
        cpuHead = device.getType() == com.aparapi.device.Device.TYPE.CPU;
        headT = alloc(cur, cpuHead ? (long) vocab * d : 0);
        long gemmT = cpuHead ? gemmScratchFloats(n, d, ffn, vocab, block) : 0;
        gemmScratch = alloc(cur, gemmT);
        logits = keepLogits ? alloc(cur, (long) steps * n * vocab) : -1;
        gH0 = alloc(cur, nd);
        gH1 = alloc(cur, nd);
        gA = alloc(cur, nd);
        gB = alloc(cur, nd);
        gQ = alloc(cur, nd);
        gK = alloc(cur, nd);
        gV = alloc(cur, nd);
        gM = alloc(cur, nf);
        gG = alloc(cur, nf);
        gU = alloc(cur, nf);
        if (cur[0] != activationFloats(cfg, batch, seqLen, keepLogits, cpuHead)) {
            throw new IllegalStateException("activationFloats disagrees with the allocation: " + cur[0]);
        }
        if (cur[0] > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("activations for batch " + batch + " x " + seqLen + " need " + cur[0]
                    + " floats, more than one device buffer can hold here; use a smaller batch");
        }
        int metrics = n + 2 * steps + NORM_PARTIALS;
        this.ops = new OpenClOps(device, layout.arraySize(), (int) cur[0], metrics, n);
        if (cpuHead) {
            ops.setTransposeScratch(gemmScratch, (int) gemmT);
        }
        float[] cos = new float[seqLen * hd / 2], sin = new float[seqLen * hd / 2];
        Rope.tables(cos, sin, seqLen, hd, cfg.ropeBase());
        ops.setRopeTables(cos, sin);
    }

    /** The largest activation buffer one model can have: a Java array, mirrored on the device. */
    public static final long MAX_BUFFER_FLOATS = Integer.MAX_VALUE - 8;

    /**
     * Floats of the activation buffer for (batch, seqLen): per token, each (layer, step) cell keeps ten
     * d-vectors, three FFN vectors, one log-sum-exp per head and four RMS statistics; each step keeps two
     * d-vectors and seven scalars; plus one block of logits and the backward pass's scratch vectors; on a
     * CPU device also the LM head's weight transposed and room to transpose the operands of a product.
     */
    public static long activationFloats(LoopConfig cfg, int batch, int seqLen, boolean keepLogits, boolean cpu) {
        long n = (long) batch * seqLen, d = cfg.hidden(), f = cfg.ffn(), cells = (long) cfg.steps() * cfg.layers();
        long v = cfg.vocab();
        long block = Math.max(1, Math.min(n, Math.max(64, (1 << 24) / cfg.vocab())));
        return cells * n * (10 * d + 3 * f + cfg.heads() + 4) + cfg.steps() * n * (2 * d + 7) + block * v
                + (keepLogits ? cfg.steps() * n * v : 0) + n * (7 * d + 3 * f)
                + (cpu ? v * d + gemmScratchFloats(n, d, f, v, block) : 0);
    }

    // the largest pair of transposed operands: a layer's weight gradient (both activations), its input gradient
    // (the weight), and the LM head's weight gradient over one block of rows (dlogits and h)
    private static long gemmScratchFloats(long n, long d, long f, long v, long block) {
        return Math.max(Math.max((d + f) * n, d * f), (v + d) * block);
    }

    private static int alloc(long[] cur, long size) {
        long at = cur[0];
        cur[0] += size;
        return (int) Math.min(at, Integer.MAX_VALUE);
    }

    public ParamLayout layout() {
        return layout;
    }

    public OpenClOps ops() {
        return ops;
    }

    /** Copies parameters to the device and clears the Adam moments. */
    public void setParameters(float[] params) {
        System.arraycopy(params, 0, ops.host(Buffer.PARAMS), 0, params.length);
        ops.upload(Buffer.PARAMS);
        java.util.Arrays.fill(ops.host(Buffer.MOM1), 0f);
        java.util.Arrays.fill(ops.host(Buffer.MOM2), 0f);
        ops.upload(Buffer.MOM1);
        ops.upload(Buffer.MOM2);
        adamStep = 0;
    }

    /** Downloads Adam's moments and update count. */
    public io.ouro.worker.model.OptimizerState optimizerState() {
        ops.download(Buffer.MOM1);
        ops.download(Buffer.MOM2);
        return new io.ouro.worker.model.OptimizerState(adamStep, ops.read(Buffer.MOM1).clone(),
                ops.read(Buffer.MOM2).clone());
    }

    /** Uploads Adam's moments and update count (from a checkpoint). */
    public void setOptimizerState(io.ouro.worker.model.OptimizerState s) {
        float[] m1 = ops.host(Buffer.MOM1), m2 = ops.host(Buffer.MOM2);
        if (s.m().length != m1.length) {
            throw new IllegalArgumentException("optimizer state holds " + s.m().length + " values, the model " + m1.length);
        }
        System.arraycopy(s.m(), 0, m1, 0, m1.length);
        System.arraycopy(s.v(), 0, m2, 0, m2.length);
        ops.upload(Buffer.MOM1);
        ops.upload(Buffer.MOM2);
        adamStep = s.step();
    }

    /** Downloads the parameters. */
    public float[] parameters() {
        ops.download(Buffer.PARAMS);
        return ops.read(Buffer.PARAMS).clone();
    }

    /** Downloads the gradient buffer (for the all-reduce). */
    public float[] gradients() {
        ops.download(Buffer.GRADS);
        return ops.read(Buffer.GRADS).clone();
    }

    /** Replaces the device gradients, e.g. with the all-reduced sum. */
    public void setGradients(float[] grads) {
        System.arraycopy(grads, 0, ops.host(Buffer.GRADS), 0, grads.length);
        ops.upload(Buffer.GRADS);
    }

    public void zeroGradients() {
        ops.fill(Buffer.GRADS, 0, layout.arraySize(), 0f);
    }

    /** The (N,V) logits of step t from the last forward; needs keepLogits. */
    public float[] logits(int t) {
        if (!keepLogits) {
            throw new IllegalStateException("logits were not kept: construct with keepLogits = true");
        }
        ops.download(Buffer.ACT);
        float[] act = ops.read(Buffer.ACT);
        return java.util.Arrays.copyOfRange(act, logits + t * n * vocab, logits + (t + 1) * n * vocab);
    }

    public StepReport forward(int[] tokens, int[] targets, Objective objective) {
        int valid = TokenBatch.validate(tokens, targets, batch, seqLen, vocab);
        this.validTokens = valid;
        this.objective = objective;
        this.forwardDone = false;
        System.arraycopy(tokens, 0, ops.hostInts(Buffer.TOKENS), 0, n);
        System.arraycopy(targets, 0, ops.hostInts(Buffer.TARGETS), 0, n);
        ops.upload(Buffer.TOKENS);
        ops.upload(Buffer.TARGETS);
        float eps = (float) cfg.normEps();

        ops.embedForward(x0, layout.embed().off(), n, d);
        for (int t = 0; t < steps; t++) {
            for (int l = 0; l < layers; l++) {
                int i = t * layers + l;
                int out = l + 1 < layers ? x0 + (i + 1) * nd : xt + t * nd;
                layerForward(layout.layer(l), i, out, eps);
            }
            ops.rmsnormForward(hn + t * nd, rstdF + t * n, xt + t * nd, layout.finalNorm().off(), n, d, eps);
            if (t + 1 < steps) {
                ops.copy(x0 + (t + 1) * layers * nd, hn + t * nd, nd);
            }
            for (int r0 = 0; r0 < n; r0 += block) {
                int rows = Math.min(block, n - r0);
                ops.linearForward(scratch, hn + t * nd + r0 * d, Buffer.PARAMS, layout.lmHead().off(), rows, d, vocab);
                ops.crossEntropyForward(scratch, lse + t * n, ce + t * n, r0, rows, vocab);
                if (keepLogits) {
                    ops.copy(logits + (t * n + r0) * vocab, scratch, rows * vocab);
                }
            }
            ops.linearForward(z + t * n, hn + t * nd, Buffer.PARAMS, layout.gateWeight().off(), n, d, 1);
            ops.biasAdd(z + t * n, layout.gateBias().off(), n);
        }
        boolean one = objective.trainsLm();
        float scale = (float) (one ? 1.0 / valid : 1.0 / ((double) valid * steps));
        ops.exitObjective(z, ce, p, dz, dce, n, steps, one, scale, (float) objective.beta(),
                (float) objective.k(), (float) objective.gamma());
        ops.download(Buffer.METRICS);
        float[] met = ops.read(Buffer.METRICS);
        double loss = 0;
        for (int r = 0; r < n; r++) {
            loss += met[r];
        }
        double[] stepCe = new double[steps], meanExit = new double[steps];
        for (int t = 0; t < steps; t++) {
            stepCe[t] = met[n + t] / valid;
            meanExit[t] = met[n + steps + t] / valid;
        }
        if (!Double.isFinite(loss)) {
            throw new NonFiniteException("loss is " + loss + " on " + OpenClDevices.describe(ops.device()));
        }
        forwardDone = true;
        return new StepReport(loss, stepCe, meanExit, valid);
    }

    /** Adds the gradient of the last forward's objective into the device gradient buffer. */
    public void backward() {
        if (!forwardDone) {
            throw new IllegalStateException("backward needs a successful forward first");
        }
        TensorView gw = layout.gateWeight();
        boolean lm = objective.trainsLm();
        gH = gH0;
        gTmp = gH1;
        ops.fill(Buffer.ACT, gH, nd, 0f);
        if (lm && cpuHead) {
            ops.transpose(headT, Buffer.PARAMS, layout.lmHead().off(), vocab, d);
        }
        for (int t = steps - 1; t >= 0; t--) {
            ops.linearBackwardWeight(Buffer.GRADS, gw.off(), dz + t * n, hn + t * nd, n, d, 1);
            ops.sumToGrad(layout.gateBias().off(), dz + t * n, n);
            if (!lm) {
                continue;
            }
            ops.linearBackwardInput(gH, dz + t * n, Buffer.PARAMS, gw.off(), n, d, 1);
            for (int r0 = 0; r0 < n; r0 += block) {
                int rows = Math.min(block, n - r0);
                int h = hn + t * nd + r0 * d;
                ops.linearForward(scratch, h, Buffer.PARAMS, layout.lmHead().off(), rows, d, vocab);
                ops.crossEntropyBackward(scratch, lse + t * n, dce + t * n, r0, rows, vocab);
                if (cpuHead) {
                    // dh += dlogits . W as dot products with W transposed once for the whole backward pass
                    // (OpenClOps.gemm would transpose it again for every block and loop step)
                    ops.gemm(Buffer.ACT, gH + r0 * d, d, 1, Buffer.ACT, scratch, vocab, 1, Buffer.ACT, headT, vocab, 1,
                            rows, d, vocab, true);
                } else {
                    ops.linearBackwardInput(gH + r0 * d, scratch, Buffer.PARAMS, layout.lmHead().off(), rows, d, vocab);
                }
                ops.linearBackwardWeight(Buffer.GRADS, layout.lmHead().off(), scratch, h, rows, d, vocab);
            }
            ops.fill(Buffer.ACT, gTmp, nd, 0f);
            ops.rmsnormBackward(gTmp, layout.finalNorm().off(), gH, xt + t * nd, rstdF + t * n,
                    layout.finalNorm().off(), n, d);
            int s = gH;
            gH = gTmp;
            gTmp = s;
            for (int l = layers - 1; l >= 0; l--) {
                layerBackward(layout.layer(l), t * layers + l);
            }
        }
        if (lm) {
            ops.embedBackward(layout.embed().off(), gH, n, d);
        }
    }

    /** Global-norm clipping on the device; returns the norm before clipping (as GradClip does). */
    public double clipGradients(double maxNorm) {
        ops.gradSumSquares(n + 2 * steps, NORM_PARTIALS);
        ops.download(Buffer.METRICS);
        float[] met = ops.read(Buffer.METRICS);
        double ss = 0;
        for (int i = 0; i < NORM_PARTIALS; i++) {
            ss += met[n + 2 * steps + i];
        }
        double norm = Math.sqrt(ss);
        double coef = maxNorm / (norm + 1e-6);
        if (coef < 1) {
            ops.scaleGrads((float) coef);
        }
        return norm;
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
                ops.adamw(t.off(), t.len(), keep, (float) beta1, (float) beta2, (float) (lr / bc1), sqrtBc2, (float) eps);
            }
        }
    }

    private void layerForward(TensorView[] lt, int i, int out, float eps) {
        int c = i * nd, cf = i * nf, cn = i * n;
        ops.rmsnormForward(a1 + c, rstd1 + cn, x0 + c, lt[ParamLayout.IN_NORM].off(), n, d, eps);
        ops.linearForward(q + c, a1 + c, Buffer.PARAMS, lt[ParamLayout.Q].off(), n, d, d);
        ops.linearForward(k + c, a1 + c, Buffer.PARAMS, lt[ParamLayout.K].off(), n, d, d);
        ops.linearForward(v + c, a1 + c, Buffer.PARAMS, lt[ParamLayout.V].off(), n, d, d);
        ops.rope(q + c, n, seqLen, heads, hd, true);
        ops.rope(k + c, n, seqLen, heads, hd, true);
        ops.attentionForward(att + c, attLse + i * pp, q + c, k + c, v + c, batch, seqLen, heads, hd);
        ops.linearForward(o + c, att + c, Buffer.PARAMS, lt[ParamLayout.O].off(), n, d, d);
        ops.rmsnormForward(x1 + c, rstd2 + cn, o + c, lt[ParamLayout.IN_NORM_2].off(), n, d, eps);
        ops.add(x1 + c, x0 + c, nd);
        ops.rmsnormForward(f1 + c, rstd3 + cn, x1 + c, lt[ParamLayout.POST_NORM].off(), n, d, eps);
        ops.linearForward(g + cf, f1 + c, Buffer.PARAMS, lt[ParamLayout.GATE].off(), n, d, ffn);
        ops.linearForward(u + cf, f1 + c, Buffer.PARAMS, lt[ParamLayout.UP].off(), n, d, ffn);
        ops.swigluForward(m + cf, g + cf, u + cf, nf);
        ops.linearForward(f + c, m + cf, Buffer.PARAMS, lt[ParamLayout.DOWN].off(), n, ffn, d);
        ops.rmsnormForward(out, rstd4 + cn, f + c, lt[ParamLayout.POST_NORM_2].off(), n, d, eps);
        ops.add(out, x1 + c, nd);
    }

    /** gH holds dL/d(layer output) on entry and dL/d(layer input) on exit. */
    private void layerBackward(TensorView[] lt, int i) {
        int c = i * nd, cf = i * nf, cn = i * n;
        ops.fill(Buffer.ACT, gA, nd, 0f);
        ops.rmsnormBackward(gA, lt[ParamLayout.POST_NORM_2].off(), gH, f + c, rstd4 + cn,
                lt[ParamLayout.POST_NORM_2].off(), n, d);
        ops.fill(Buffer.ACT, gM, nf, 0f);
        ops.linearBackwardInput(gM, gA, Buffer.PARAMS, lt[ParamLayout.DOWN].off(), n, ffn, d);
        ops.linearBackwardWeight(Buffer.GRADS, lt[ParamLayout.DOWN].off(), gA, m + cf, n, ffn, d);
        ops.fill(Buffer.ACT, gG, nf, 0f);
        ops.fill(Buffer.ACT, gU, nf, 0f);
        ops.swigluBackward(gG, gU, gM, g + cf, u + cf, nf);
        ops.fill(Buffer.ACT, gB, nd, 0f);
        ops.linearBackwardInput(gB, gG, Buffer.PARAMS, lt[ParamLayout.GATE].off(), n, d, ffn);
        ops.linearBackwardInput(gB, gU, Buffer.PARAMS, lt[ParamLayout.UP].off(), n, d, ffn);
        ops.linearBackwardWeight(Buffer.GRADS, lt[ParamLayout.GATE].off(), gG, f1 + c, n, d, ffn);
        ops.linearBackwardWeight(Buffer.GRADS, lt[ParamLayout.UP].off(), gU, f1 + c, n, d, ffn);
        ops.rmsnormBackward(gH, lt[ParamLayout.POST_NORM].off(), gB, x1 + c, rstd3 + cn,
                lt[ParamLayout.POST_NORM].off(), n, d);

        ops.fill(Buffer.ACT, gA, nd, 0f);
        ops.rmsnormBackward(gA, lt[ParamLayout.IN_NORM_2].off(), gH, o + c, rstd2 + cn,
                lt[ParamLayout.IN_NORM_2].off(), n, d);
        ops.fill(Buffer.ACT, gB, nd, 0f);
        ops.linearBackwardInput(gB, gA, Buffer.PARAMS, lt[ParamLayout.O].off(), n, d, d);
        ops.linearBackwardWeight(Buffer.GRADS, lt[ParamLayout.O].off(), gA, att + c, n, d, d);
        ops.fill(Buffer.ACT, gQ, nd, 0f);
        ops.fill(Buffer.ACT, gK, nd, 0f);
        ops.fill(Buffer.ACT, gV, nd, 0f);
        ops.attentionBackward(gQ, gK, gV, gB, att + c, attLse + i * pp, q + c, k + c, v + c, batch, seqLen, heads, hd);
        ops.rope(gQ, n, seqLen, heads, hd, false);
        ops.rope(gK, n, seqLen, heads, hd, false);
        ops.fill(Buffer.ACT, gA, nd, 0f);
        ops.linearBackwardInput(gA, gQ, Buffer.PARAMS, lt[ParamLayout.Q].off(), n, d, d);
        ops.linearBackwardInput(gA, gK, Buffer.PARAMS, lt[ParamLayout.K].off(), n, d, d);
        ops.linearBackwardInput(gA, gV, Buffer.PARAMS, lt[ParamLayout.V].off(), n, d, d);
        ops.linearBackwardWeight(Buffer.GRADS, lt[ParamLayout.Q].off(), gQ, a1 + c, n, d, d);
        ops.linearBackwardWeight(Buffer.GRADS, lt[ParamLayout.K].off(), gK, a1 + c, n, d, d);
        ops.linearBackwardWeight(Buffer.GRADS, lt[ParamLayout.V].off(), gV, a1 + c, n, d, d);
        ops.rmsnormBackward(gH, lt[ParamLayout.IN_NORM].off(), gA, x0 + c, rstd1 + cn,
                lt[ParamLayout.IN_NORM].off(), n, d);
    }

    @Override
    public void close() {
        ops.close();
    }
}
