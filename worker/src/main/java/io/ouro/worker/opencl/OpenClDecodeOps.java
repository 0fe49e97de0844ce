package io.ouro.worker.opencl;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.infer.DecodeOps;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.ParamSegments;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.reference.Rope;

import static io.ouro.worker.infer.DecodeOps.A1;
import static io.ouro.worker.infer.DecodeOps.ATT;
import static io.ouro.worker.infer.DecodeOps.F;
import static io.ouro.worker.infer.DecodeOps.F1;
import static io.ouro.worker.infer.DecodeOps.G;
import static io.ouro.worker.infer.DecodeOps.H;
import static io.ouro.worker.infer.DecodeOps.M;
import static io.ouro.worker.infer.DecodeOps.O;
import static io.ouro.worker.infer.DecodeOps.U;
import static io.ouro.worker.infer.DecodeOps.X1;

/**
 * {@link DecodeOps} on an OpenCL device: the parameters, every vector of the token being decoded and the KV cache stay
 * in device buffers of a forward-only {@link OpenClOps} (no gradient or optimizer buffers); per token only its id goes
 * in, and only the gate logits and the exit step's logits come out (through the small metrics buffer).
 *
 * <p>The activation buffer holds the vectors in id order, then the per-(step, layer) cache slots of {@code stepCapacity}
 * rows each, then the per-layer shared slots of {@code sharedCapacity} rows (0 when only {@code full} caches are
 * wanted). A slot is its keys (rows, D) followed by its values. Sizes are fixed at construction: a generation longer
 * than the capacity is an error naming it.
 */
public final class OpenClDecodeOps implements DecodeOps {

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final ParamSegments segments;
    private final OpenClOps ops;
    private final int[] vecOff;
    private final int rstd, scores, stepBase, sharedBase, stepCap, sharedCap, d, slotsPerStep;
    /** In TOKENS: the token at 0, the fused step's table from {@link #TABLE_AT}, then the cache-row entries. */
    private static final int TABLE_AT = 1;
    private final int storeAt;
    /** Whether a loop step runs as one launch of one work-group (decode.cl); see {@link #fuseSteps}. */
    private boolean fused;
    /** Work items of the one work-group of the fused loop step (a power of two). */
    static final int DECODE_GROUP = 256;
    /** Whether the GEMV runs the hand-written OpenCL C (default on CPU devices) or the translated twin. */
    private boolean handGemv;
    private final boolean fusable;

    /**
     * @param stepCapacity   tokens the per-(step, layer) slots hold (the longest prompt for shared caches, prompt plus
     *                       new tokens for {@code full})
     * @param sharedCapacity tokens the shared per-layer slots hold (0: no shared slots)
     */
    public OpenClDecodeOps(LoopConfig cfg, OpenCLDevice device, float[] params, int stepCapacity, int sharedCapacity) {
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        if (params.length != layout.arraySize()) {
            throw new IllegalArgumentException("params: expected " + layout.arraySize() + " for " + cfg + ", got "
                    + params.length);
        }
        if (stepCapacity < 1 || sharedCapacity < 0) {
            throw new IllegalArgumentException("cache capacity: expected at least one token per step slot, got "
                    + stepCapacity + " (shared " + sharedCapacity + ")");
        }
        this.d = cfg.hidden();
        this.stepCap = stepCapacity;
        this.sharedCap = sharedCapacity;
        this.slotsPerStep = cfg.steps() * cfg.layers();
        int n = DecodeOps.vectors(cfg);
        vecOff = new int[n];
        long at = 0;
        for (int v = 0; v < n; v++) {
            vecOff[v] = (int) at;
            at += DecodeOps.size(cfg, v);
        }
        rstd = (int) at;
        at += 1;
        // the attention scores of one token: heads x (cached rows + 1)
        scores = (int) at;
        at += (long) cfg.heads() * (Math.max(stepCapacity, sharedCapacity) + 1);
        stepBase = (int) Math.min(at, Integer.MAX_VALUE);
        at += 2L * slotsPerStep * stepCapacity * d;
        sharedBase = (int) Math.min(at, Integer.MAX_VALUE);
        at += 2L * cfg.layers() * sharedCapacity * d;
        long limit = OpenClStepOps.deviceBufferFloats(device);
        // the decoder's vectors and cache are one window of the activation arena (decode.cl addresses it linearly)
        long window = Math.min(limit, OpenClOps.ACT_WINDOW);
        if (at > window) {
            throw new IllegalArgumentException("a KV cache of " + stepCapacity + " tokens per (step, layer) and "
                    + sharedCapacity + " shared needs " + at + " floats, more than one activation buffer holds ("
                    + window + "); generate fewer tokens or use --cache last_step");
        }
        this.segments = OpenClStepOps.paramSegments(layout, limit);
        int[] segs = new int[segments.count()];
        for (int i = 0; i < segs.length; i++) {
            segs[i] = (int) segments.size(i);
        }
        int layers = cfg.layers();
        this.storeAt = TABLE_AT + layers * ClKernels.DECODE_LAYER_INTS + ClKernels.DECODE_TAIL_INTS;
        int tokInts = storeAt + 6 * slotsPerStep;
        this.ops = new OpenClOps(device, segs, (int) at, Math.max(cfg.vocab(), cfg.steps()), tokInts, new int[0], false);
        try {
            // the fused step reads every tensor of the block, the final norm and the gate from one segment
            int seg = segments.segment(layout.layer(0)[0]);
            boolean one = segments.segment(layout.finalNorm()) == seg && segments.segment(layout.gateWeight()) == seg
                    && segments.segment(layout.gateBias()) == seg;
            int[] tok = ops.hostInts(Buffer.TOKENS);
            for (int l = 0; l < layers; l++) {
                TensorView[] w = layout.layer(l);
                for (int x = 0; x < ParamLayout.LAYER_TENSORS; x++) {
                    one &= segments.segment(w[x]) == seg;
                    tok[TABLE_AT + l * ClKernels.DECODE_LAYER_INTS + x] = (int) segments.local(w[x]);
                }
            }
            int tail = TABLE_AT + layers * ClKernels.DECODE_LAYER_INTS;
            int[] vectors = {H, A1, ATT, O, X1, F1, G, U, M, F};
            for (int i = 0; i < vectors.length; i++) {
                tok[tail + i] = vecOff[vectors[i]];
            }
            tok[tail + 10] = scores;
            tok[tail + 11] = (int) segments.local(layout.finalNorm());
            tok[tail + 12] = (int) segments.local(layout.gateWeight());
            tok[tail + 13] = (int) segments.local(layout.gateBias());
            this.fusable = one && (d / cfg.heads()) % 2 == 0;
            this.fused = fusable && ops.cpuDevice();
            this.handGemv = ops.cpuDevice();
            for (int i = 0; i < segs.length; i++) {
                Buffer b = OpenClOps.params(i);
                System.arraycopy(params, (int) segments.start(i), ops.host(b), 0, segs[i]);
                ops.upload(b);
            }
            int hd = cfg.headDim(), positions = Math.max(stepCapacity, sharedCapacity);
            float[] cos = new float[positions * hd / 2], sin = new float[positions * hd / 2];
            Rope.tables(cos, sin, positions, hd, cfg.ropeBase());
            ops.setRopeTables(cos, sin);
        } catch (RuntimeException e) {
            ops.close();
            throw e;
        }
    }

    /**
     * Whether each loop step runs as one launch of one work-group (decode.cl's OURO_DECODE_STEP; default on CPU
     * devices, where decoding is bound by launches) or as one launch per op (default elsewhere: one work-group would
     * leave a GPU's other compute units idle). Both are tested to agree.
     */
    public void fuseSteps(boolean on) {
        if (on && !fusable) {
            throw new IllegalStateException("the fused loop step needs the block, the final norm and the gate in one "
                    + "parameter segment and an even head size");
        }
        fused = on;
    }

    /** Whether loop steps run fused ({@link #fuseSteps}). */
    public boolean fused() {
        return fused;
    }

    @Override
    public boolean loopStep(int t, int pos, int[] slots) {
        if (!fused) {
            return false;
        }
        checkPosition(pos);
        int stride = slots.length > 1 ? keys(slots[1]) - keys(slots[0]) : 0;
        for (int l = 1; l < slots.length; l++) {
            if (keys(slots[l]) - keys(slots[l - 1]) != stride || capacity(slots[l]) != capacity(slots[0])) {
                throw new IllegalArgumentException("the fused step needs the layers' slots evenly spaced");
            }
        }
        // one launch of one work-group (decode.cl): every layer, the final norm and the exit gate's logit, from the
        // table at TABLE_AT; the query of (t, layer 0) with its key and value after it (layer l's at + 3 d l), layer
        // 0's cached keys (layer l's at + l * stride), values at a fixed distance from the keys; pos cached rows
        int seg = segments.segment(layout.layer(0)[0]);
        ops.reads(Buffer.ACT, OpenClOps.params(seg), Buffer.TOKENS);
        ops.k.setDecodeStep(TABLE_AT, seg, cfg.layers(), d, cfg.heads(), cfg.ffn(), vecOff[DecodeOps.query(cfg, t, 0)],
                keys(slots[0]), stride, values(slots[0]) - keys(slots[0]), vecOff[DecodeOps.gate(t)], pos,
                (float) cfg.normEps());
        ops.execute(Range.create(ops.device(), DECODE_GROUP, DECODE_GROUP));
        ops.wrote(Buffer.ACT);
        return true;
    }

    @Override
    public void storeRows(int row, int[] slots, int[] layers, int[] t0, int[] t1) {
        int[] tok = ops.hostInts(Buffer.TOKENS);
        for (int i = 0; i < slots.length; i++) {
            int k0 = DecodeOps.key(cfg, t0[i], layers[i]), v0 = DecodeOps.value(cfg, t0[i], layers[i]);
            int e = storeAt + 6 * i;
            tok[e] = keys(slots[i]) + row * d;
            tok[e + 1] = values(slots[i]) + row * d;
            tok[e + 2] = vecOff[k0];
            tok[e + 3] = vecOff[v0];
            tok[e + 4] = t1[i] - t0[i] > 1 ? vecOff[DecodeOps.key(cfg, t0[i] + 1, layers[i])] - vecOff[k0] : 0;
            tok[e + 5] = t1[i] - t0[i];
        }
        ops.upload(Buffer.TOKENS);
        // every row in one launch (decode.cl), each destination row the mean of its sources in step order, as mean()
        ops.reads(Buffer.ACT, Buffer.TOKENS);
        ops.k.setStoreRows(storeAt, slots.length, d);
        ops.launch1D(slots.length * 2 * d);
        ops.wrote(Buffer.ACT);
    }

    /** The device side. */
    public OpenClOps device() {
        return ops;
    }

    /** Bytes of every device buffer (parameters, vectors, the cache at its capacity). */
    public long deviceBytes() {
        return ops.deviceBytes();
    }

    @Override
    public LoopConfig config() {
        return cfg;
    }

    @Override
    public int capacity(int slot) {
        return slot < slotsPerStep ? stepCap : sharedCap;
    }

    @Override
    public void embed(int h, int token) {
        ops.hostInts(Buffer.TOKENS)[0] = token;
        ops.upload(Buffer.TOKENS);
        ops.embedForward(vecOff[h], segments.segment(layout.embed()), segments.local(layout.embed()), 1, d);
    }

    @Override
    public void rmsnorm(int y, int x, TensorView w) {
        ops.rmsnormForward(vecOff[y], rstd, vecOff[x], segments.segment(w), segments.local(w), 1, d,
                (float) cfg.normEps());
    }

    @Override
    public void linear(int y, int x, TensorView w, int in, int out) {
        gemv(vecOff[y], vecOff[x], segments.segment(w), segments.local(w), in, out);
    }

    // y (out) = x (in) . w (out, in)^T for one row, w in parameter segment seg
    private void gemv(int y, int x, int seg, int wOff, int in, int out) {
        ops.reads(Buffer.ACT, OpenClOps.params(seg));
        ops.k.setGemv(y, x, seg, wOff, in, out, handGemv);
        ops.launch1D(handGemv ? (out + 3) / 4 : out);
        ops.wrote(Buffer.ACT);
    }

    /** Runs the GEMV as the hand-written OpenCL C (vector loads; default on CPU devices) or the translated twin. */
    public void useHandGemv(boolean hand) {
        handGemv = hand;
    }

    @Override
    public void linears(int[] ys, int x, TensorView[] ws, int in, int out) {
        boolean one = true;
        for (int i = 1; i < ys.length; i++) {
            one &= vecOff[ys[i]] == vecOff[ys[i - 1]] + out && ws[i].offset() == ws[i - 1].offset() + ws[i - 1].len()
                    && segments.segment(ws[i]) == segments.segment(ws[0]);
        }
        if (!one) {
            DecodeOps.super.linears(ys, x, ws, in, out);
            return;
        }
        // the products' weights follow each other in the parameters and their outputs in act: one launch
        gemv(vecOff[ys[0]], vecOff[x], segments.segment(ws[0]), segments.local(ws[0]), in, out * ys.length);
    }

    @Override
    public void rmsnormAdd(int y, int x, TensorView w, int r, int count) {
        int seg = segments.segment(w);
        ops.reads(Buffer.ACT, OpenClOps.params(seg));
        ops.k.setRmsnormAdd(vecOff[y], rstd, vecOff[x], seg, segments.local(w), vecOff[r], d, (float) cfg.normEps());
        ops.launch1D(1);
        ops.wrote(Buffer.ACT);
    }

    @Override
    public void biasAdd(int y, TensorView bias) {
        ops.biasAdd(vecOff[y], segments.segment(bias), segments.local(bias), 1);
    }

    @Override
    public void rope(int first, int count, int pos) {
        checkPosition(pos);
        // consecutive vectors of one size are consecutive in act
        ops.reads(Buffer.ACT);
        ops.k.setRopeAt(vecOff[first], pos, cfg.heads() * count, cfg.headDim());
        ops.launch1D(cfg.heads() * count * (cfg.headDim() / 2));
        ops.wrote(Buffer.ACT);
    }

    @Override
    public void add(int acc, int x, int count) {
        ops.add(vecOff[acc], vecOff[x], count);
    }

    @Override
    public void swiglu(int m, int g, int u, int count) {
        ops.swigluForward(vecOff[m], vecOff[g], vecOff[u], count);
    }

    @Override
    public void attend(int out, int q, int slot, int len, int selfKey, int selfValue) {
        ops.reads(Buffer.ACT);
        ops.k.setAttendCached(vecOff[out], vecOff[q], keys(slot), values(slot), len, vecOff[selfKey], vecOff[selfValue],
                cfg.heads(), cfg.headDim(), scores);
        ops.launch1D(cfg.heads());
        ops.wrote(Buffer.ACT);
    }

    @Override
    public void storeRow(int slot, int row, int l, int t0, int t1) {
        int k0 = DecodeOps.key(cfg, t0, l), v0 = DecodeOps.value(cfg, t0, l);
        int stride = t1 - t0 > 1 ? vecOff[DecodeOps.key(cfg, t0 + 1, l)] - vecOff[k0] : 0;
        mean(keys(slot) + row * d, vecOff[k0], stride, t1 - t0, d);
        mean(values(slot) + row * d, vecOff[v0], stride, t1 - t0, d);
    }

    @Override
    public void mergeSlots(int dst, int first, int stride, int count, int rows) {
        if (first + (count - 1) * stride >= slotsPerStep) {
            throw new IllegalArgumentException("merging reads per-step slots only");
        }
        int between = count > 1 ? keys(first + stride) - keys(first) : 0;
        mean(keys(dst), keys(first), between, count, rows * d);
        mean(values(dst), values(first), between, count, rows * d);
    }

    // act[dst + i] = mean over j < sources of act[src + j * stride + i], i < count
    private void mean(int dst, int src, int stride, int sources, int count) {
        ops.reads(Buffer.ACT);
        ops.k.setMean(dst, src, stride, sources, count);
        ops.launchElementwise(count);
        ops.wrote(Buffer.ACT);
    }

    @Override
    public void release(int slot) {
        // device memory is sized once; a released slot is simply no longer read
    }

    @Override
    public float[] read(int v, int count) {
        return readAct(vecOff[v], count);
    }

    /**
     * {@code count} floats of act at {@code off}, through the metrics buffer (which must hold them): the whole
     * activation buffer (the KV cache) is never downloaded.
     */
    private float[] readAct(int off, int count) {
        if (count > ops.size(Buffer.METRICS)) {
            throw new IllegalArgumentException(count + " floats do not fit the metrics buffer of "
                    + ops.size(Buffer.METRICS));
        }
        ops.reads(Buffer.ACT, Buffer.METRICS);
        ops.k.setToMetrics(0, off, count);
        ops.launchElementwise(count);
        ops.wrote(Buffer.METRICS);
        ops.download(Buffer.METRICS);
        return java.util.Arrays.copyOf(ops.read(Buffer.METRICS), count);
    }

    @Override
    public float[] readSlot(int slot, int rows, boolean values) {
        int off = values ? values(slot) : keys(slot), n = rows * d, chunk = Math.max(cfg.vocab(), cfg.steps());
        float[] out = new float[n];
        for (int i = 0; i < n; i += chunk) {
            int c = Math.min(chunk, n - i);
            System.arraycopy(readAct(off + i, c), 0, out, i, c);
        }
        return out;
    }

    @Override
    public float[] readGates(int count) {
        return readAct(vecOff[DecodeOps.gate(0)], count);
    }

    private void checkPosition(int pos) {
        if (pos >= Math.max(stepCap, sharedCap)) {
            throw new IllegalStateException("position " + pos + " is past the decoder's capacity of "
                    + Math.max(stepCap, sharedCap) + " tokens");
        }
    }

    private int keys(int slot) {
        return slot < slotsPerStep ? stepBase + slot * 2 * stepCap * d
                : sharedBase + (slot - slotsPerStep) * 2 * sharedCap * d;
    }

    private int values(int slot) {
        return keys(slot) + (slot < slotsPerStep ? stepCap : sharedCap) * d;
    }

    @Override
    public void close() {
        ops.close();
    }
}
