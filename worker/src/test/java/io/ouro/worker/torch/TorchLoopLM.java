package io.ouro.worker.torch;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.GradientCollector;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;

import java.util.Arrays;
import java.util.List;
import java.util.function.Predicate;

/**
 * An independent PyTorch (DJL) implementation of the Ouro LoopLM, for parity tests only.
 *
 * <p>The forward pass is written with plain tensor ops and differentiated by PyTorch autograd: no
 * hand-written backward. Parameters and the AdamW moments live in one long-lived manager; every
 * {@link #forwardBackward} and {@link #clipAndStep} call works in a sub-manager that is closed before
 * the call returns, so nothing leaks across steps. Gradients are taken from fresh leaf copies of the
 * parameters made per call, so they never accumulate across calls.
 *
 * <p>Everything is float32 on the CPU.
 */
public final class TorchLoopLM implements AutoCloseable {

    /** What one forward (and optional backward) pass produced. */
    public record Result(double loss, double[] stepCe, double[] meanExit, float[][] logits, float[] grads) {}

    private final ParamLayout layout;
    private final LoopConfig cfg;
    private final List<TensorView> views;
    private final Engine engine;
    private final NDManager manager;
    private final NDArray[] params;
    private final NDArray[] adamM;
    private final NDArray[] adamV;
    private final int[] adamStep;
    private final int gateW, gateB;
    private float[] lastGrads;
    private NDManager callScope;   // the sub-manager of the forwardBackward in progress
    private boolean closed;

    public TorchLoopLM(ParamLayout layout) {
        this.layout = layout;
        this.cfg = layout.config();
        this.views = layout.tensors();
        this.engine = Engine.getEngine("PyTorch");
        this.manager = engine.newBaseManager(Device.cpu());
        int n = views.size();
        this.params = new NDArray[n];
        this.adamM = new NDArray[n];
        this.adamV = new NDArray[n];
        this.adamStep = new int[n];
        for (int i = 0; i < n; i++) {
            params[i] = manager.zeros(shapeOf(views.get(i)), DataType.FLOAT32);
        }
        this.gateW = views.indexOf(layout.gateWeight());
        this.gateB = views.indexOf(layout.gateBias());
    }

    public ParamLayout layout() {
        return layout;
    }

    /** Copies the flat buffer into the parameters; the AdamW state is kept (see {@link #resetOptimizer()}). */
    public void load(float[] flat) {
        checkOpen();
        if (flat.length != layout.arraySize()) {
            throw new IllegalArgumentException("params: expected length " + layout.arraySize() + ", got " + flat.length);
        }
        for (int i = 0; i < views.size(); i++) {
            TensorView v = views.get(i);
            NDArray fresh = manager.create(Arrays.copyOfRange(flat, v.off(), v.off() + v.len()), shapeOf(v));
            params[i].close();
            params[i] = fresh;
        }
    }

    /**
     * Loads an HF safetensors weights file with DJL's own reader (not the product's): every tensor is found by its
     * HF name and must have the layout's shape. F32 files only: DJL 0.36's decoder aborts the JVM on BF16 tensors.
     */
    public void loadSafetensors(java.io.InputStream in) {
        checkOpen();
        try (NDManager sub = manager.newSubManager()) {
            NDList list = NDList.decode(sub, in);
            if (list.size() != views.size()) {
                throw new IllegalArgumentException("safetensors: " + list.size() + " tensors, the layout has " + views.size());
            }
            for (NDArray a : list) {
                TensorView v = layout.get(a.getName());
                int i = views.indexOf(v);
                if (!a.getShape().equals(shapeOf(v))) {
                    throw new IllegalArgumentException(a.getName() + ": shape " + a.getShape() + ", expected " + shapeOf(v));
                }
                if (a.getDataType() != DataType.FLOAT32) {
                    throw new IllegalArgumentException(a.getName() + ": " + a.getDataType() + ", expected float32");
                }
                NDArray fresh = a.duplicate();
                fresh.attach(manager);
                params[i].close();
                params[i] = fresh;
            }
        }
    }

    /**
     * Loads an HF safetensors file of BF16 (or F32) tensors, widening BF16 on the PyTorch side: the header is read here
     * (8-byte little-endian length, JSON); DJL 0.36 with this PyTorch aborts the JVM on any bfloat16 tensor (decoding,
     * creating or casting one), so each BF16 value's 16 bits go in as an exact float32 integer u and PyTorch computes
     * the number from sign, exponent and mantissa, (-1)^s 2^(e-127) (1 + m/128), or 2^-126 m/128 when e = 0 (BF16 is
     * the top half of a float32). Every tensor is found by its HF name and must have the layout's shape.
     */
    public void loadSafetensorsConverted(java.io.InputStream in) throws java.io.IOException {
        checkOpen();
        byte[] all = in.readAllBytes();
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(all).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int headerLen = (int) buf.getLong(0);
        com.fasterxml.jackson.databind.JsonNode header = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(new String(all, 8, headerLen, java.nio.charset.StandardCharsets.UTF_8));
        int base = 8 + headerLen, seen = 0;
        try (NDManager sub = manager.newSubManager()) {
            for (java.util.Iterator<String> it = header.fieldNames(); it.hasNext(); ) {
                String name = it.next();
                if (name.equals("__metadata__")) {
                    continue;
                }
                com.fasterxml.jackson.databind.JsonNode t = header.get(name);
                TensorView v = layout.get(name);
                long[] shape = new long[t.get("shape").size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = t.get("shape").get(i).asLong();
                }
                if (!new Shape(shape).equals(shapeOf(v))) {
                    throw new IllegalArgumentException(name + ": shape " + new Shape(shape) + ", expected " + shapeOf(v));
                }
                String dtype = t.get("dtype").asText();
                DataType type = switch (dtype) {
                    case "BF16" -> DataType.BFLOAT16;
                    case "F32" -> DataType.FLOAT32;
                    default -> throw new IllegalArgumentException(name + ": dtype " + dtype);
                };
                int from = base + t.get("data_offsets").get(0).asInt(), to = base + t.get("data_offsets").get(1).asInt();
                NDArray wide;
                if (type == DataType.FLOAT32) {
                    float[] f = new float[(to - from) / 4];
                    buf.slice(from, to - from).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
                    wide = sub.create(f, new Shape(shape));
                } else {
                    float[] u = new float[(to - from) / 2];
                    for (int i = 0; i < u.length; i++) {
                        u[i] = buf.getShort(from + 2 * i) & 0xFFFF;
                    }
                    NDArray bits = sub.create(u, new Shape(shape));
                    NDArray sign = bits.div(32768f).floor();
                    NDArray exp = bits.div(128f).floor().sub(sign.mul(256f));
                    NDArray mant = bits.sub(bits.div(128f).floor().mul(128f));
                    NDArray normal = sub.create(2f).pow(exp.sub(127f)).mul(mant.div(128f).add(1f));
                    NDArray subnormal = mant.div(128f).mul((float) Math.pow(2, -126));
                    wide = NDArrays.where(exp.eq(0f), subnormal, normal).mul(sign.mul(-2f).add(1f));
                }
                wide.attach(manager);
                int i = views.indexOf(v);
                params[i].close();
                params[i] = wide;
                seen++;
            }
        }
        if (seen != views.size()) {
            throw new IllegalArgumentException("safetensors: " + seen + " tensors, the layout has " + views.size());
        }
    }

    public float[] exportParams() {
        checkOpen();
        float[] out = new float[layout.arraySize()];
        for (int i = 0; i < views.size(); i++) {
            TensorView v = views.get(i);
            float[] data = params[i].toFloatArray();
            System.arraycopy(data, 0, out, v.off(), v.len());
        }
        return out;
    }

    /** Arrays held by the long-lived manager and its open sub-managers; for leak checks. */
    int liveArrays() {
        return manager.getManagedArrays().size();
    }

    /** Forgets the AdamW moments and step counts. */
    public void resetOptimizer() {
        checkOpen();
        for (int i = 0; i < views.size(); i++) {
            if (adamM[i] != null) {
                adamM[i].close();
                adamV[i].close();
                adamM[i] = null;
                adamV[i] = null;
            }
            adamStep[i] = 0;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Forward / backward
    // ------------------------------------------------------------------------------------------

    /**
     * One forward pass over {@code batch} sequences of {@code seqLen} tokens (row n = b * seqLen + s), and,
     * when {@code backward}, PyTorch autograd of the objective. Targets below 0 mark positions without a
     * target. Stage I differentiates every tensor; Stage II only the exit gate (all other gradients are 0).
     * The gradients are returned in the flat layout order and kept for the next {@link #clipAndStep}.
     */
    public Result forwardBackward(int[] tokens, int[] targets, int batch, int seqLen, Objective obj,
                                  boolean backward, boolean keepLogits) {
        checkOpen();
        int nTok = validate(tokens, targets, batch, seqLen);
        final int n = batch * seqLen;
        final int steps = cfg.steps();
        final boolean stageOne = obj.trainsLm();

        try (NDManager sub = manager.newSubManager()) {
            callScope = sub;
            // Fresh leaves: a copy of each parameter, so .grad starts undefined on every call.
            NDArray[] w = new NDArray[views.size()];
            for (int i = 0; i < views.size(); i++) {
                NDArray leaf = params[i].duplicate();
                leaf.attach(sub);
                boolean trainable = stageOne || i == gateW || i == gateB;
                if (backward && trainable) {
                    leaf.setRequiresGradient(true);
                }
                w[i] = leaf;
            }

            long[] tok = new long[n];
            long[] tgt = new long[n];
            float[] maskData = new float[n];
            for (int i = 0; i < n; i++) {
                tok[i] = tokens[i];
                tgt[i] = Math.max(targets[i], 0);
                maskData[i] = targets[i] >= 0 ? 1f : 0f;
            }
            NDArray mask = sub.create(maskData);                                        // [N], 1 where there is a target
            // Gather indices (int64): row n of the embedding, and the target column of row n of the logits.
            NDArray tokIndex = sub.create(tok).reshape(n, 1).repeat(1, cfg.hidden());   // [N,d]
            NDArray tgtIndex = sub.create(tgt).reshape(n, 1);                           // [N,1]
            NDArray[] rope = ropeTables(sub, seqLen);
            NDArray causal = causalMask(sub, seqLen);

            NDArray loss;
            NDArray[] ce = new NDArray[steps];
            NDArray[] z = new NDArray[steps];
            float[][] logits = keepLogits ? new float[steps][] : null;

            try (GradientCollector gc = backward ? engine.newGradientCollector() : null) {
                // h[n][j] = embed[tokens[n]][j]; backward is a scatter-add into the embedding rows.
                NDArray h = w[views.indexOf(layout.embed())].gather(tokIndex, 0)
                        .reshape(batch, seqLen, cfg.hidden());
                NDArray lmHead = w[views.indexOf(layout.lmHead())];
                NDArray finalNorm = w[views.indexOf(layout.finalNorm())];
                for (int t = 0; t < steps; t++) {
                    for (int l = 0; l < cfg.layers(); l++) {
                        h = layer(h, w, l, rope, causal, batch, seqLen);
                    }
                    h = rmsNorm(h, finalNorm);
                    NDArray hf = h.reshape(n, cfg.hidden());
                    NDArray lg = hf.matMul(lmHead.transpose());                            // [N,V]
                    if (keepLogits) {
                        logits[t] = lg.toFloatArray();
                    }
                    // CE = logsumexp - logit[target]; 0 at positions without a target
                    ce[t] = lg.logSoftmax(1).gather(tgtIndex, 1).reshape(n).mul(mask).neg();   // [N]
                    z[t] = hf.matMul(w[gateW].transpose()).reshape(n).add(w[gateB]);       // [N]
                }

                ExitDist exit = exitDistribution(z, steps);
                if (stageOne) {
                    NDArray perTok = null;
                    for (int t = 0; t < steps; t++) {
                        NDArray term = exit.p[t].mul(ce[t]);
                        if (obj.beta() != 0) {
                            term = term.add(exit.p[t].mul(exit.logP[t]).mul(c(obj.beta())));
                        }
                        perTok = perTok == null ? term : perTok.add(term);
                    }
                    loss = perTok.mul(mask).sum().div(c(nTok));
                } else {
                    loss = null;
                    for (int t = 1; t < steps; t++) {
                        NDArray prev = ce[t - 1].stopGradient();
                        NDArray cur = ce[t].stopGradient();
                        NDArray wt = prev.sub(cur).maximum(c(0)).sub(c(obj.gamma())).mul(c(obj.k()));
                        wt = Activation.sigmoid(wt);
                        // -(w log(1-lambda) + (1-w) log lambda) = w softplus(z) + (1-w) softplus(-z)
                        NDArray bce = wt.mul(Activation.softPlus(z[t]))
                                .add(wt.neg().add(c(1)).mul(Activation.softPlus(z[t].neg())));
                        NDArray stepLoss = bce.mul(mask).sum().div(c(nTok));
                        loss = loss == null ? stepLoss : loss.add(stepLoss);
                    }
                    loss = loss == null ? c(0) : loss.div(c(steps));
                }

                float[] grads = null;
                if (backward) {
                    grads = new float[layout.arraySize()];
                    boolean hasGraph = stageOne || steps > 1;
                    if (hasGraph) {
                        gc.backward(loss);
                        for (int i = 0; i < views.size(); i++) {
                            boolean trainable = stageOne || i == gateW || i == gateB;
                            boolean reached = !(steps == 1 && (i == gateW || i == gateB)); // T = 1: the gate is unused
                            if (trainable && reached) {
                                TensorView v = views.get(i);
                                float[] g = w[i].getGradient().toFloatArray();
                                System.arraycopy(g, 0, grads, v.off(), v.len());
                            }
                        }
                    }
                    lastGrads = grads;
                }

                double[] stepCe = new double[steps];
                double[] meanExit = new double[steps];
                for (int t = 0; t < steps; t++) {
                    float[] ceT = ce[t].toFloatArray();
                    float[] pT = exit.p[t].toFloatArray();
                    double sc = 0, sp = 0;
                    for (int i = 0; i < n; i++) {
                        if (targets[i] >= 0) {
                            sc += ceT[i];
                            sp += pT[i];
                        }
                    }
                    stepCe[t] = sc / nTok;
                    meanExit[t] = sp / nTok;
                }
                double lossValue = loss.toFloatArray()[0];
                return new Result(lossValue, stepCe, meanExit, logits, grads);
            }
        } finally {
            callScope = null;
        }
    }

    /**
     * A float32 0-dim constant that lives until the call's sub-manager closes.
     *
     * <p>Never use DJL's {@code mul(Number)} / {@code div(Number)} on arrays that take part in a backward:
     * the PyTorch engine wraps the number in a temporary tensor over a Java direct buffer and closes it
     * right after the op, but autograd keeps that tensor for the backward; once the garbage collector
     * frees the buffer, the backward reads freed memory (seen as NaN or wrong gradients under GC pressure).
     * A float32 constant also keeps 0-dim results (the loss) in float32, where a double would promote them.
     */
    private NDArray c(double v) {
        return callScope.create((float) v);
    }

    private record ExitDist(NDArray[] p, NDArray[] logP) {}

    /**
     * p_t = lambda_t S_{t-1} (t < T), p_T = S_{T-1}, S_t = prod_{j<=t} (1 - lambda_j), in log space:
     * log lambda = -softplus(-z), log(1 - lambda) = -softplus(z).
     */
    private static ExitDist exitDistribution(NDArray[] z, int steps) {
        NDArray[] p = new NDArray[steps];
        NDArray[] logP = new NDArray[steps];
        NDArray logS = null;   // log S_{t-1}; null means log S_0 = 0
        for (int t = 0; t < steps; t++) {
            if (t < steps - 1) {
                NDArray logLambda = Activation.softPlus(z[t].neg()).neg();
                logP[t] = logS == null ? logLambda : logLambda.add(logS);
                NDArray logOneMinus = Activation.softPlus(z[t]).neg();
                logS = logS == null ? logOneMinus : logS.add(logOneMinus);
            } else {
                logP[t] = logS == null ? z[t].zerosLike().stopGradient() : logS;
            }
            p[t] = logP[t].exp();
        }
        return new ExitDist(p, logP);
    }

    private NDArray layer(NDArray h, NDArray[] w, int l, NDArray[] rope, NDArray causal, int batch, int seqLen) {
        TensorView[] lv = layout.layer(l);
        NDArray r = h;
        NDArray a = rmsNorm(h, w[views.indexOf(lv[ParamLayout.IN_NORM])]);
        a = attention(a, w[views.indexOf(lv[ParamLayout.Q])], w[views.indexOf(lv[ParamLayout.K])],
                w[views.indexOf(lv[ParamLayout.V])], w[views.indexOf(lv[ParamLayout.O])], rope, causal, batch, seqLen);
        a = rmsNorm(a, w[views.indexOf(lv[ParamLayout.IN_NORM_2])]);
        h = r.add(a);

        r = h;
        NDArray f = rmsNorm(h, w[views.indexOf(lv[ParamLayout.POST_NORM])]);
        NDArray g = linear(f, w[views.indexOf(lv[ParamLayout.GATE])]);
        NDArray u = linear(f, w[views.indexOf(lv[ParamLayout.UP])]);
        f = linear(g.mul(Activation.sigmoid(g)).mul(u), w[views.indexOf(lv[ParamLayout.DOWN])]);
        f = rmsNorm(f, w[views.indexOf(lv[ParamLayout.POST_NORM_2])]);
        return r.add(f);
    }

    private NDArray attention(NDArray a, NDArray wq, NDArray wk, NDArray wv, NDArray wo,
                              NDArray[] rope, NDArray causal, int batch, int seqLen) {
        int nh = cfg.heads();
        int hd = cfg.headDim();
        NDArray q = heads(linear(a, wq), batch, seqLen, nh, hd);   // [B,nh,S,hd]
        NDArray k = heads(linear(a, wk), batch, seqLen, nh, hd);
        NDArray v = heads(linear(a, wv), batch, seqLen, nh, hd);
        q = applyRope(q, rope[0], rope[1], hd);
        k = applyRope(k, rope[0], rope[1], hd);
        NDArray scores = q.matMul(k.transpose(0, 1, 3, 2)).div(c(Math.sqrt(hd))).add(causal);   // [B,nh,S,S]
        NDArray probs = scores.softmax(3);
        NDArray o = probs.matMul(v)                     // [B,nh,S,hd]
                .transpose(0, 2, 1, 3)                  // [B,S,nh,hd]
                .reshape(batch, seqLen, (long) nh * hd);
        return linear(o, wo);
    }

    private static NDArray heads(NDArray x, int batch, int seqLen, int nh, int hd) {
        return x.reshape(batch, seqLen, nh, hd).transpose(0, 2, 1, 3);
    }

    /** q cos + rotate_half(q) sin, rotate_half(x) = cat(-x[hd/2:], x[:hd/2]). */
    private static NDArray applyRope(NDArray x, NDArray cos, NDArray sin, int hd) {
        int half = hd / 2;
        NDArray x1 = x.get(new NDIndex("..., :" + half));
        NDArray x2 = x.get(new NDIndex("..., " + half + ":"));
        NDArray rotated = NDArrays.concat(new NDList(x2.neg(), x1), 3);
        return x.mul(cos).add(rotated.mul(sin));
    }

    /** cos and sin tables [S, hd], built as cat(angle, angle) with angle = s / ropeBase^(2i/hd). */
    private NDArray[] ropeTables(NDManager sub, int seqLen) {
        int hd = cfg.headDim();
        int half = hd / 2;
        float[] cos = new float[seqLen * hd];
        float[] sin = new float[seqLen * hd];
        for (int s = 0; s < seqLen; s++) {
            for (int i = 0; i < half; i++) {
                double invFreq = 1.0 / Math.pow(cfg.ropeBase(), (2.0 * i) / hd);
                double angle = s * invFreq;
                float c = (float) Math.cos(angle);
                float si = (float) Math.sin(angle);
                cos[s * hd + i] = c;
                cos[s * hd + i + half] = c;
                sin[s * hd + i] = si;
                sin[s * hd + i + half] = si;
            }
        }
        Shape shape = new Shape(seqLen, hd);
        return new NDArray[] {sub.create(cos, shape), sub.create(sin, shape)};
    }

    private static NDArray causalMask(NDManager sub, int seqLen) {
        float[] m = new float[seqLen * seqLen];
        for (int s = 0; s < seqLen; s++) {
            for (int j = 0; j < seqLen; j++) {
                m[s * seqLen + j] = j <= s ? 0f : Float.NEGATIVE_INFINITY;
            }
        }
        return sub.create(m, new Shape(seqLen, seqLen));
    }

    private NDArray rmsNorm(NDArray x, NDArray weight) {
        int last = x.getShape().dimension() - 1;
        NDArray variance = x.square().mean(new int[] {last}, true);
        return x.div(variance.add(c(cfg.normEps())).sqrt()).mul(weight);
    }

    /** y = x W^T with W stored [out, in]. */
    private static NDArray linear(NDArray x, NDArray weight) {
        return x.matMul(weight.transpose());
    }

    // ------------------------------------------------------------------------------------------
    // Decoding with a KV cache
    // ------------------------------------------------------------------------------------------

    /** A decoding session over the current parameters (see {@link Decode}). */
    public Decode decode() {
        checkOpen();
        return new Decode();
    }

    /**
     * Decoding one token at a time with a KV cache per (loop step, layer), every token running all T steps, as HF
     * Ouro decodes: the keys (kept transposed, (1, H, hd, len)) and values ((1, H, len, hd)) grow by concatenation.
     * Each token's temporaries live in a sub-manager closed before {@link #next} returns; the weights are transposed
     * once per session, and the constants (eps, the attention scale, rotate_half as an (hd, hd) matrix) are made once:
     * through DJL, a 0-dim constant costs about 0.2 ms and NDIndex slicing 1 ms on this machine, which would otherwise
     * dominate a token's time (the training forward's helpers make them per call).
     */
    public final class Decode implements AutoCloseable {
        private final NDManager session = manager.newSubManager();
        private final NDArray[] wT = new NDArray[views.size()];
        private final NDArray[][] keysT, values;
        private final NDArray eps, scale, rotateHalf;
        private int len;

        private Decode() {
            int hd = cfg.headDim(), half = hd / 2;
            eps = session.create((float) cfg.normEps());
            scale = session.create((float) (1.0 / Math.sqrt(hd)));
            // rotate_half(x) = cat(-x[half:], x[:half]) = x R
            float[] r = new float[hd * hd];
            for (int j = 0; j < half; j++) {
                r[(j + half) * hd + j] = -1f;
                r[j * hd + j + half] = 1f;
            }
            rotateHalf = session.create(r, new Shape(hd, hd));
            for (int i = 0; i < views.size(); i++) {
                wT[i] = params[i].getShape().dimension() == 2 ? params[i].transpose() : params[i].duplicate();
                wT[i].attach(session);
            }
            keysT = new NDArray[cfg.steps()][cfg.layers()];
            values = new NDArray[cfg.steps()][cfg.layers()];
        }

        /** Tokens held. */
        public int length() {
            return len;
        }

        /** Feeds {@code token} at the next position; the last step's logits (V). */
        public float[] next(int token) {
            int d = cfg.hidden(), nh = cfg.heads(), hd = cfg.headDim(), pos = len;
            try (NDManager sub = session.newSubManager()) {
                callScope = sub;
                NDArray h = params[views.indexOf(layout.embed())].get(token);
                h.attach(sub);
                h = h.reshape(1, d);
                float[] cos = new float[hd], sin = new float[hd];
                for (int i = 0; i < hd / 2; i++) {
                    double angle = pos / Math.pow(cfg.ropeBase(), (2.0 * i) / hd);
                    cos[i] = cos[i + hd / 2] = (float) Math.cos(angle);
                    sin[i] = sin[i + hd / 2] = (float) Math.sin(angle);
                }
                NDArray cosR = sub.create(cos), sinR = sub.create(sin);
                for (int t = 0; t < cfg.steps(); t++) {
                    for (int l = 0; l < cfg.layers(); l++) {
                        TensorView[] lv = layout.layer(l);
                        NDArray a = norm(h, weight(lv[ParamLayout.IN_NORM]));
                        NDArray q = rope(a.matMul(weight(lv[ParamLayout.Q])).reshape(1, nh, 1, hd), cosR, sinR);
                        NDArray k = rope(a.matMul(weight(lv[ParamLayout.K])).reshape(1, nh, 1, hd), cosR, sinR);
                        NDArray v = a.matMul(weight(lv[ParamLayout.V])).reshape(1, nh, 1, hd);
                        keysT[t][l] = grow(keysT[t][l], k.transpose(0, 1, 3, 2), 3);
                        values[t][l] = grow(values[t][l], v, 2);
                        NDArray probs = q.matMul(keysT[t][l]).mul(scale).softmax(3);   // (1,H,1,len)
                        NDArray o = probs.matMul(values[t][l]).transpose(0, 2, 1, 3).reshape(1, d);
                        NDArray x = h.add(norm(o.matMul(weight(lv[ParamLayout.O])), weight(lv[ParamLayout.IN_NORM_2])));
                        NDArray f = norm(x, weight(lv[ParamLayout.POST_NORM]));
                        NDArray g = f.matMul(weight(lv[ParamLayout.GATE]));
                        NDArray u = f.matMul(weight(lv[ParamLayout.UP]));
                        f = g.mul(Activation.sigmoid(g)).mul(u).matMul(weight(lv[ParamLayout.DOWN]));
                        h = x.add(norm(f, weight(lv[ParamLayout.POST_NORM_2])));
                    }
                    h = norm(h, weight(layout.finalNorm()));
                }
                len++;
                return h.matMul(weight(layout.lmHead())).toFloatArray();
            } finally {
                callScope = null;
            }
        }

        private NDArray norm(NDArray x, NDArray w) {
            return x.div(x.square().mean(new int[] {1}, true).add(eps).sqrt()).mul(w);
        }

        // q cos + rotate_half(q) sin
        private NDArray rope(NDArray x, NDArray cos, NDArray sin) {
            return x.mul(cos).add(x.matMul(rotateHalf).mul(sin));
        }

        // the session's copy of a tensor (2-D ones transposed to (in, out))
        private NDArray weight(TensorView v) {
            return wT[views.indexOf(v)];
        }

        private NDArray grow(NDArray cache, NDArray row, int axis) {
            NDArray next = cache == null ? row.duplicate() : cache.concat(row, axis);
            next.attach(session);
            if (cache != null) {
                cache.close();
            }
            return next;
        }

        /** Bytes of the keys and values held (float32). */
        public long cacheBytes() {
            return 2L * cfg.steps() * cfg.layers() * len * cfg.hidden() * Float.BYTES;
        }

        @Override
        public void close() {
            session.close();
        }
    }

    // ------------------------------------------------------------------------------------------
    // Optimizer
    // ------------------------------------------------------------------------------------------

    /**
     * torch.nn.utils.clip_grad_norm_ followed by one torch.optim.AdamW step, over the trainable tensors
     * of {@code obj} (all for Stage I, the exit gate for Stage II), with the gradients of the last
     * {@link #forwardBackward} call that ran a backward. Returns the pre-clip global gradient norm.
     */
    public double clipAndStep(double lr, double weightDecay, double beta1, double beta2, double eps,
                              double maxNorm, Objective obj, Predicate<TensorView> decays) {
        checkOpen();
        if (lastGrads == null) {
            throw new IllegalStateException("clipAndStep needs a forwardBackward with backward = true first");
        }
        boolean stageOne = obj.trainsLm();
        try (NDManager sub = manager.newSubManager()) {
            int nt = views.size();
            NDArray[] g = new NDArray[nt];
            NDList norms = new NDList();
            for (int i = 0; i < nt; i++) {
                if (!(stageOne || i == gateW || i == gateB)) {
                    continue;
                }
                TensorView v = views.get(i);
                g[i] = sub.create(Arrays.copyOfRange(lastGrads, v.off(), v.off() + v.len()), shapeOf(v));
                norms.add(g[i].square().sum().sqrt());
            }
            // clip_grad_norm_: norm of the per-tensor norms; coef = maxNorm / (total + 1e-6), clamped to 1.
            NDArray total = NDArrays.stack(norms).square().sum().sqrt();
            NDArray coef = sub.create((float) maxNorm).div(total.add(1e-6f));
            double totalValue = total.toFloatArray()[0];
            boolean clip = coef.toFloatArray()[0] < 1f;

            for (int i = 0; i < nt; i++) {
                if (g[i] == null) {
                    continue;
                }
                TensorView v = views.get(i);
                NDArray grad = clip ? g[i].mul(coef) : g[i];
                if (adamM[i] == null) {
                    adamM[i] = manager.zeros(shapeOf(v), DataType.FLOAT32);
                    adamV[i] = manager.zeros(shapeOf(v), DataType.FLOAT32);
                }
                int step = ++adamStep[i];
                NDArray p = params[i].duplicate();
                p.attach(sub);
                NDArray m = adamM[i].duplicate();
                m.attach(sub);
                NDArray s = adamV[i].duplicate();
                s.attach(sub);

                // No autograd here, so DJL's Number operands are safe (the ops run eagerly); a Number becomes
                // a 0-dim float64 tensor that a float32 operand casts to float32, as torch does with a Python float.
                if (decays.test(v)) {
                    p = p.mul(1 - lr * weightDecay);
                }
                // exp_avg.lerp_(grad, 1 - beta1): torch's lerp kernel, which equals beta1 m + (1 - beta1) g
                float weight = (float) (1 - beta1);
                m = weight < 0.5f ? m.add(grad.sub(m).mul(weight)) : grad.sub(grad.sub(m).mul(1f - weight));
                // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value = 1 - beta2)
                s = s.mul(beta2).add(grad.mul(1 - beta2).mul(grad));
                double bc1 = 1 - Math.pow(beta1, step);
                double bc2 = 1 - Math.pow(beta2, step);
                NDArray denom = s.sqrt().div(Math.sqrt(bc2)).add(eps);
                p = p.sub(m.div(denom).mul(lr / bc1));

                replace(params, i, p);
                replace(adamM, i, m);
                replace(adamV, i, s);
            }
            return totalValue;
        }
    }

    /** Moves {@code fresh} (a temporary of a sub-manager) into the long-lived manager in place of slot i. */
    private void replace(NDArray[] slots, int i, NDArray fresh) {
        fresh.attach(manager);
        slots[i].close();
        slots[i] = fresh;
    }

    // ------------------------------------------------------------------------------------------

    private int validate(int[] tokens, int[] targets, int batch, int seqLen) {
        if (batch <= 0 || seqLen <= 0) {
            throw new IllegalArgumentException("batch and seqLen must be positive, got " + batch + ", " + seqLen);
        }
        int n = batch * seqLen;
        if (tokens.length != n || targets.length != n) {
            throw new IllegalArgumentException("tokens/targets: expected length " + n + ", got "
                    + tokens.length + "/" + targets.length);
        }
        int nTok = 0;
        for (int i = 0; i < n; i++) {
            if (tokens[i] < 0 || tokens[i] >= cfg.vocab()) {
                throw new IllegalArgumentException("tokens[" + i + "] = " + tokens[i] + " outside [0, " + cfg.vocab() + ")");
            }
            if (targets[i] >= cfg.vocab()) {
                throw new IllegalArgumentException("targets[" + i + "] = " + targets[i] + " >= vocab " + cfg.vocab());
            }
            if (targets[i] >= 0) {
                nTok++;
            }
        }
        if (nTok == 0) {
            throw new IllegalArgumentException("targets: no position has a target");
        }
        return nTok;
    }

    private static Shape shapeOf(TensorView v) {
        int[] s = v.shape();
        long[] l = new long[s.length];
        for (int i = 0; i < s.length; i++) {
            l[i] = s[i];
        }
        return new Shape(l);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("TorchLoopLM is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            manager.close();
        }
    }
}
