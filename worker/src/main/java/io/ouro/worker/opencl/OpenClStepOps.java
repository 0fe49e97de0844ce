package io.ouro.worker.opencl;

import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.ParamSegments;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.reference.Rope;
import io.ouro.worker.step.Region;
import io.ouro.worker.step.StepOps;
import io.ouro.worker.step.StepWorkspace;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The step's ops on an OpenCL device ({@link OpenClOps}): every region is a slice of the one activation buffer;
 * parameters, gradients and Adam's moments are the device buffers of {@link OpenClOps}. The device buffers come
 * into being at {@link #allocate}, when the schedule has said how much activation memory it needs.
 *
 * <p>On a CPU device two regions are added behind the schedule's: room for {@link OpenClOps#gemm} to transpose
 * operands (every layout then runs as dot products, which pocl vectorizes), and the LM head's weight transposed,
 * made once per parameter update rather than for every block of every step.
 */
public final class OpenClStepOps implements StepOps, AutoCloseable {

    /** Partial sums of the gradient's sum of squares (one per work item). */
    private static final int NORM_PARTIALS = 256;

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final OpenCLDevice device;
    private final int rows, seqLen;
    private final long bufferLimit;
    private final ParamSegments segments;
    private final boolean cpu;
    private OpenClOps ops;
    /** Floats of Adam's moments per segment ({@link #momentRange}); null: as the parameters. */
    private int[] momentSegments;
    private BufferLayout buffers;
    /** The stash buffers hold 16-bit values ({@link #allocate}). */
    private boolean bf16Stash;
    private int headT = -1;
    private boolean headTFresh;
    private int headForm;
    /** False: forward only (no gradient or moment buffers; see {@link #forwardOnly}). */
    private boolean training = true;
    /** The products' precision ({@link #matmul(MatmulPrecision)}). */
    private MatmulPrecision matmul = MatmulPrecision.FP32;
    /** Rows of the activation copies' slots ({@link #activationCopyRows}); 0: none. */
    private int copyRows;

    /**
     * @param micro       sequences per micro-batch, of {@code seqLen} tokens
     * @param bufferLimit the largest stash buffer in floats (0: as large as the device and a Java array allow); a
     *                    small limit spreads the stash over many buffers
     */
    public OpenClStepOps(LoopConfig cfg, OpenCLDevice device, int micro, int seqLen, long bufferLimit) {
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        this.device = device;
        this.rows = Math.multiplyExact(micro, seqLen);
        this.seqLen = seqLen;
        this.cpu = device.getType() == com.aparapi.device.Device.TYPE.CPU;
        long deviceLimit = deviceBufferFloats(device);
        this.bufferLimit = bufferLimit > 0 ? Math.min(bufferLimit, deviceLimit) : deviceLimit;
        this.segments = paramSegments(layout, this.bufferLimit);
    }

    /**
     * Makes the device buffers forward-only (evaluation): no gradient or Adam moment buffers are allocated, and an op
     * that needs them is an error. Call before {@link #allocate}.
     */
    public OpenClStepOps forwardOnly() {
        if (ops != null) {
            throw new IllegalStateException("forwardOnly() must come before the device buffers are allocated");
        }
        training = false;
        return this;
    }

    /**
     * Keeps Adam's moments for parameters [from, to) of the flat layout only (ZeRO-1: this rank's slice), so that the
     * moment buffers are allocated at the slice's size and never at the model's. Call before {@link #allocate}.
     */
    public OpenClStepOps momentRange(long from, long to) {
        if (ops != null) {
            throw new IllegalStateException("momentRange() must come before the device buffers are allocated");
        }
        if (from < 0 || to < from || to > layout.totalSize()) {
            throw new IllegalArgumentException("optimizer range [" + from + ", " + to + ") outside the "
                    + layout.totalSize() + " parameters");
        }
        momentSegments = new int[segments.count()];
        for (int i = 0; i < momentSegments.length; i++) {
            momentSegments[i] = (int) Math.max(0, Math.min(to, segments.start(i) + segments.size(i))
                    - Math.max(from, segments.start(i)));
        }
        return this;
    }

    /** The products' precision ({@code train.matmul}; default fp32). Call before {@link #allocate}. */
    public OpenClStepOps matmul(MatmulPrecision m) {
        if (ops != null) {
            throw new IllegalStateException("matmul() must come before the device buffers are allocated");
        }
        matmul = m;
        return this;
    }

    /**
     * Rows the tensor-core GEMM's activation copies hold ({@link #copyRowsFor}; 0: none). Call
     * before {@link #allocate}.
     */
    public OpenClStepOps activationCopyRows(int rows) {
        if (ops != null) {
            throw new IllegalStateException("activationCopyRows() must come before the device buffers are allocated");
        }
        copyRows = rows;
        return this;
    }

    /**
     * The rows of the activation copies for a step of this shape: under {@code train.matmul: bf16_tensor} the rows a
     * layer's products take at once (the recomputation chunk, or the micro-batch), else 0 (no copies).
     */
    public static int copyRowsFor(StepShape shape) {
        return shape.matmul() != MatmulPrecision.BF16_TENSOR ? 0
                : StepWorkspace.chunkRows(shape.micro() * shape.seqLen(), shape.recompute(), shape.chunk());
    }

    /**
     * 16-bit values of one activation copy slot for products of {@code rows} rows: the widest operand of a layer
     * (rows x max(hidden, ffn)), at most two per float of one activation window.
     */
    static long activationCopyValues(LoopConfig cfg, int rows, long window) {
        return Math.min((long) rows * Math.max(cfg.hidden(), cfg.ffn()), 2 * window);
    }

    /** The parameter buffer cut into the kernel's segments; an error when the model needs more. */
    public static ParamSegments paramSegments(ParamLayout layout, long bufferLimit) {
        ParamSegments s = new ParamSegments(layout, bufferLimit);
        if (s.count() > OpenClOps.PARAM_SEGMENTS) {
            throw new IllegalArgumentException("a model of " + layout.totalSize() + " parameters needs " + s.count()
                    + " buffers of at most " + bufferLimit + " floats; the OpenCL kernel has " + OpenClOps.PARAM_SEGMENTS);
        }
        return s;
    }

    /** How the parameters are cut into device buffers. */
    public ParamSegments segments() {
        return segments;
    }

    /** The largest buffer this device takes, in floats: its allocation limit, and a Java array's. */
    public static long deviceBufferFloats(OpenCLDevice device) {
        return Math.min(OpenClModel.MAX_BUFFER_FLOATS, device.getMaxMemAllocSize() / 4);
    }

    /** The device side, once {@link #allocate} has run. */
    public OpenClOps device() {
        if (ops == null) {
            throw new IllegalStateException("the device buffers exist once the schedule has allocated its regions");
        }
        return ops;
    }

    /** Where the regions went, once {@link #allocate} has run. */
    public BufferLayout buffers() {
        return buffers;
    }

    /**
     * Where a schedule's regions live on the device: the working regions at global offsets of the activation arena,
     * each in the first window of at most {@link OpenClOps#ACT_WINDOW} floats with room for it, so that none straddles
     * two (then the RMSNorm weight gradient's partial sums and, on a CPU device, the LM head's scratch and the GEMM's),
     * the stash regions packed in order into stash buffers of at most {@code bufferLimit} floats.
     *
     * @param actFloats       the arena's extent in global offsets (the last window's end)
     * @param headScratch     the CPU scratch regions' offsets (-1 on other devices)
     * @param reductionScratch the offset of the partial sums ({@link OpenClOps#setReductionScratch}), on every device:
     *                        a CPU device runs the reductions only when asked, but they are small (rows / 128 x d)
     * @param actCopySlots    the tensor-core GEMM's activation copy slots ({@link OpenClOps#setActivationCopy}), each
     *                        of {@code actCopyValues} 16-bit values; none without them
     */
    public record BufferLayout(Region[] regions, long actFloats, long[] stashFloats, int headScratch, int gemmScratch,
                               int reductionScratch, int[] actCopySlots, long actCopyValues) {

        /** Floats of every buffer (the windows before the last allocated whole). */
        public long totalFloats() {
            long t = actFloats;
            for (long s : stashFloats) {
                t += s;
            }
            return t;
        }

        /** Windows of the activation arena, each its own device buffer. */
        public int actWindows() {
            return (int) Math.max(1, (actFloats + OpenClOps.ACT_WINDOW - 1) / OpenClOps.ACT_WINDOW);
        }

        /** Device buffers of the activations and the stash. */
        public int buffers() {
            return actWindows() + stashFloats.length;
        }

        /** Floats of the largest activation or stash buffer. */
        public long largestFloats() {
            long m = actWindows() > 1 ? OpenClOps.ACT_WINDOW : actFloats;
            for (long s : stashFloats) {
                m = Math.max(m, s);
            }
            return m;
        }
    }

    /**
     * Lays out a schedule's regions ({@link StepWorkspace.Plan}) in device buffers; an error names what does not fit.
     *
     * @param actLimit    the largest buffer the device allocates (floats): caps each activation window
     * @param bufferLimit the largest stash buffer (floats)
     * @param bf16Stash   stash regions of 16-bit values, two per float of their buffer: their offsets count 16-bit
     *                    values, so a stash buffer holds at most 2^31 - 8 of them
     * @param copyRows    rows of the activation copy slots ({@link #copyRowsFor}); 0: none
     */
    public static BufferLayout layout(LoopConfig cfg, long[] sizes, boolean[] stash, int rows, boolean cpu, long actLimit,
                                      long bufferLimit, boolean bf16Stash, int copyRows) {
        // the stash packed in units of its elements (floats, or 16-bit values), each buffer at most `cap` of them
        long cap = bf16Stash ? Math.min(2 * bufferLimit, Integer.MAX_VALUE - 8L) : bufferLimit;
        long window = Math.min(OpenClOps.ACT_WINDOW, actLimit);
        Region[] out = new Region[sizes.length];
        List<Long> stashBuffers = new ArrayList<>();
        long[] at = new long[LoopKernel.ACT_PIECES];
        for (int i = 0; i < sizes.length; i++) {
            if (!stash[i]) {
                out[i] = new Region(0, place(at, sizes[i], window, rows));
                continue;
            }
            if (sizes[i] > cap) {
                throw new IllegalArgumentException("a hidden state of " + sizes[i] + " values (one micro-batch) exceeds "
                        + "the largest stash buffer (" + cap + (bf16Stash ? " bfloat16 values" : " floats")
                        + "); use a smaller micro_batch");
            }
            int last = stashBuffers.size() - 1;
            if (last < 0 || stashBuffers.get(last) + sizes[i] > cap) {
                stashBuffers.add(0L);
                last++;
            }
            out[i] = new Region(1 + last, (int) (long) stashBuffers.get(last));
            stashBuffers.set(last, stashBuffers.get(last) + sizes[i]);
        }
        if (stashBuffers.size() > LoopKernel.STASH_SLOTS) {
            throw new IllegalArgumentException("the stash needs " + stashBuffers.size() + " buffers of at most "
                    + cap + (bf16Stash ? " bfloat16 values" : " floats") + ", more than the kernel's "
                    + LoopKernel.STASH_SLOTS + "; use recompute: loop_step or a smaller micro_batch");
        }
        int reduce = place(at, reductionScratchFloats(cfg, rows), window, rows);
        int head = -1, gemm = -1;
        if (cpu) {
            head = place(at, headScratchFloats(cfg), window, rows);
            gemm = place(at, cpuScratchFloats(cfg, rows) - headScratchFloats(cfg), window, rows);
        }
        long copyValues = copyRows > 0 ? activationCopyValues(cfg, copyRows, window) : 0;
        int[] copySlots = new int[copyRows > 0 ? OpenClOps.ACT_COPY_SLOTS : 0];
        for (int s = 0; s < copySlots.length; s++) {
            copySlots[s] = place(at, OpenClOps.bf16Floats(copyValues), window, rows);
        }
        long extent = 0;
        for (int w = 0; w < at.length; w++) {
            extent = at[w] > 0 ? (long) w * OpenClOps.ACT_WINDOW + at[w] : extent;
        }
        return new BufferLayout(out, Math.max(1, extent),
                stashBuffers.stream().mapToLong(e -> bf16Stash ? OpenClOps.bf16Floats(e) : e).toArray(), head, gemm, reduce,
                copySlots, copyValues);
    }

    // the RMSNorm weight gradient's partial sums over the most rows it is given (a micro-batch) at width d
    private static long reductionScratchFloats(LoopConfig cfg, int rows) {
        return OpenClOps.reductionScratchFloats(rows, cfg.hidden());
    }

    // the global offset of a region of n floats: the end of the first window (used[w] floats taken) with room for it
    private static int place(long[] used, long n, long window, int rows) {
        if (n > window) {
            throw new IllegalArgumentException("a working region of " + n + " floats (" + rows + " tokens per "
                    + "micro-batch) exceeds one activation buffer (" + window + " floats); use a smaller micro_batch, "
                    + "recompute: layer or loop_step, or a smaller recompute chunk");
        }
        for (int w = 0; w < used.length; w++) {
            if (used[w] + n <= window) {
                int off = (int) ((long) w * OpenClOps.ACT_WINDOW + used[w]);
                used[w] += n;
                return off;
            }
        }
        throw new IllegalArgumentException("the working set of " + rows + " tokens per micro-batch needs more than "
                + used.length + " activation buffers of " + window + " floats; use a smaller micro_batch, "
                + "recompute: layer or loop_step, or a smaller recompute chunk");
    }

    // the LM head's weight transposed, and the largest pair of transposed GEMM operands: a layer's weight gradient
    // (both activations), its input gradient (the weight), the LM head's weight gradient over one block of rows
    private static long cpuScratchFloats(LoopConfig cfg, int rows) {
        long n = rows, d = cfg.hidden(), f = cfg.ffn(), v = cfg.vocab(), block = StepWorkspace.headBlock(rows, cfg.vocab());
        return headScratchFloats(cfg) + Math.max(Math.max((d + f) * n, d * f), (v + d) * block);
    }

    // the LM head's weight transposed, or packed in the register-blocked GEMM's panels of 16 rows
    private static long headScratchFloats(LoopConfig cfg) {
        long panels = ((long) cfg.vocab() + ClKernels.OUTER_NR - 1) / ClKernels.OUTER_NR * ClKernels.OUTER_NR;
        return panels * cfg.hidden();
    }

    @Override
    public Region[] allocate(long[] sizes, boolean[] stash, boolean bf16Stash) {
        if (ops != null) {
            throw new IllegalStateException("OpenClStepOps allocates its device buffers once");
        }
        this.bf16Stash = bf16Stash;
        buffers = layout(cfg, sizes, stash, rows, cpu, deviceBufferFloats(device), bufferLimit, bf16Stash, copyRows);
        int[] stashSizes = new int[buffers.stashFloats().length];
        for (int i = 0; i < stashSizes.length; i++) {
            stashSizes[i] = (int) buffers.stashFloats()[i];
        }
        int[] segs = new int[segments.count()];
        for (int i = 0; i < segs.length; i++) {
            segs[i] = (int) segments.size(i);
        }
        ops = new OpenClOps(device, segs, momentSegments, buffers.actFloats(),
                rows + 2 * cfg.steps() + OpenClOps.PARAM_SEGMENTS * NORM_PARTIALS, rows, stashSizes, training, matmul);
        ops.setReductionScratch(buffers.reductionScratch(), (int) reductionScratchFloats(cfg, rows));
        if (buffers.actCopySlots().length > 0) {
            ops.setActivationCopy(buffers.actCopySlots(), buffers.actCopyValues());
        }
        if (cpu) {
            headT = buffers.headScratch();
            ops.setTransposeScratch(buffers.gemmScratch(), (int) (cpuScratchFloats(cfg, rows) - headScratchFloats(cfg)));
        }
        int hd = cfg.headDim();
        float[] cos = new float[seqLen * hd / 2], sin = new float[seqLen * hd / 2];
        Rope.tables(cos, sin, seqLen, hd, cfg.ropeBase());
        ops.setRopeTables(cos, sin);
        return buffers.regions();
    }

    /** The parameters changed on the device (an upload): derived copies are stale. */
    void parametersChanged() {
        headTFresh = false;
    }

    @Override
    public long attentionStateSize(int batch, int seqLen, int heads) {
        return (long) batch * heads * seqLen;
    }

    @Override
    public void setBatch(int[] tokens, int[] targets) {
        int[] tok = ops.hostInts(Buffer.TOKENS), tgt = ops.hostInts(Buffer.TARGETS);
        System.arraycopy(tokens, 0, tok, 0, tokens.length);
        System.arraycopy(targets, 0, tgt, 0, targets.length);
        Arrays.fill(tok, tokens.length, rows, 0);
        Arrays.fill(tgt, targets.length, rows, -1);
        ops.upload(Buffer.TOKENS);
        ops.upload(Buffer.TARGETS);
    }

    @Override
    public float[] read(Region r, int count) {
        ops.download(Buffer.ACT);
        return ops.readHostAct(at(r), count);
    }

    @Override
    public void write(Region r, float[] values) {
        ops.download(Buffer.ACT);
        ops.writeHostAct(at(r), values);
        ops.upload(Buffer.ACT);
    }

    @Override
    public void embedForward(Region h, TensorView table, int n, int d) {
        ops.embedForward(at(h), segments.segment(table), local(table, 0), n, d);
    }

    @Override
    public void embedBackward(TensorView table, Region dh, int n, int d) {
        ops.embedBackward(segments.segment(table), local(table, 0), at(dh), n, d);
    }

    @Override
    public void rmsnormForward(Region y, Region rstd, Region x, TensorView w, int n, int d, float eps) {
        ops.rmsnormForward(at(y), at(rstd), at(x), segments.segment(w), segments.local(w), n, d, eps);
    }

    @Override
    public void rmsnormBackward(Region dx, Region dy, Region x, Region rstd, TensorView w, int n, int d) {
        ops.rmsnormBackward(at(dx), segments.local(w), at(dy), at(x), at(rstd), segments.segment(w), segments.local(w),
                n, d);
    }

    @Override
    public void linearForward(Region y, Region x, TensorView w, int n, int in, int out) {
        if (cpu && handGemm() && w.offset() == layout.lmHead().offset()) {
            // the register-blocked GEMM on the head's weight packed into its panels once per parameter update, not
            // again for every block of rows and every loop step
            ops.gemmPackedB(Buffer.ACT, at(y), out, Buffer.ACT, at(x), in, 1, head(w, in, out, HEAD_PACKED), n, out, in,
                    false);
            return;
        }
        ops.linearForward(at(y), at(x), OpenClOps.params(segments.segment(w)), segments.local(w), n, in, out);
    }

    @Override
    public void linearBackwardInput(Region dx, Region dy, TensorView w, int n, int in, int out) {
        if (cpu && !handGemm() && w.offset() == layout.lmHead().offset()) {
            // the translated GEMM: dx += dy . W as dot products with W transposed once per parameter update
            // (OpenClOps.gemm would transpose the whole head again for every block of rows and every loop step); the
            // register-blocked one reads W itself, whose rows are j-contiguous here
            ops.gemm(Buffer.ACT, at(dx), in, 1, Buffer.ACT, at(dy), out, 1, Buffer.ACT, head(w, in, out, HEAD_TRANSPOSED),
                    out, 1, n, in, out, true);
            return;
        }
        ops.linearBackwardInput(at(dx), at(dy), OpenClOps.params(segments.segment(w)), segments.local(w), n, in, out);
    }

    // whether products run the hand-written register-blocked GEMM (the CPU default)
    private boolean handGemm() {
        return ops.effectiveGemm() == OpenClOps.GemmKernel.OUTER;
    }

    private static final int HEAD_TRANSPOSED = 1, HEAD_PACKED = 2;

    // the LM head's weight (out, in) in the scratch as the translated GEMM wants it (transposed to (in, out)) or as
    // the register-blocked one does (its B panels), made again after a parameter update
    private int head(TensorView w, int in, int out, int form) {
        if (!headTFresh || headForm != form) {
            if (form == HEAD_TRANSPOSED) {
                ops.transpose(headT, OpenClOps.params(segments.segment(w)), segments.local(w), out, in);
            } else {
                ops.packPanels(headT, OpenClOps.params(segments.segment(w)), segments.local(w), in, 1, out, in);
            }
            headTFresh = true;
            headForm = form;
        }
        return headT;
    }

    @Override
    public void linearBackwardWeight(TensorView w, Region dy, Region x, int n, int in, int out) {
        ops.linearBackwardWeight(OpenClOps.grads(segments.segment(w)), segments.local(w), at(dy), at(x), n, in, out);
    }

    @Override
    public void biasAdd(Region y, TensorView bias, int n) {
        ops.biasAdd(at(y), segments.segment(bias), segments.local(bias), n);
    }

    @Override
    public void biasBackward(TensorView bias, Region dy, int n) {
        ops.sumToGrad(segments.segment(bias), segments.local(bias), at(dy), n);
    }

    @Override
    public void rope(Region x, int n, int seqLen, int heads, int hd, boolean forward) {
        if (seqLen != this.seqLen) {
            throw new IllegalArgumentException("rope tables are for sequences of " + this.seqLen + ", not " + seqLen);
        }
        ops.rope(at(x), n, seqLen, heads, hd, forward);
    }

    @Override
    public void attentionForward(Region out, Region state, Region q, Region k, Region v, int batch, int seqLen,
                                 int heads, int hd) {
        ops.attentionForward(at(out), at(state), at(q), at(k), at(v), batch, seqLen, heads, hd);
    }

    @Override
    public void attentionBackward(Region dq, Region dk, Region dv, Region dout, Region out, Region state, Region q,
                                  Region k, Region v, int batch, int seqLen, int heads, int hd) {
        ops.attentionBackward(at(dq), at(dk), at(dv), at(dout), at(out), at(state), at(q), at(k), at(v), batch, seqLen,
                heads, hd);
    }

    @Override
    public void swigluForward(Region m, Region g, Region u, int count) {
        ops.swigluForward(at(m), at(g), at(u), count);
    }

    @Override
    public void swigluBackward(Region dg, Region du, Region dm, Region g, Region u, int count) {
        ops.swigluBackward(at(dg), at(du), at(dm), at(g), at(u), count);
    }

    @Override
    public void add(Region acc, Region x, int count) {
        ops.add(at(acc), at(x), count);
    }

    @Override
    public void copy(Region dst, Region src, int count) {
        if (dst.array() == 0 && src.array() == 0) {
            ops.copy(dst.offset(), src.offset(), count);
        } else {
            ops.copyAcross(dst.array(), dst.offset(), src.array(), src.offset(), count, bf16Stash);
        }
    }

    @Override
    public void zero(Region r, int count) {
        ops.fill(Buffer.ACT, at(r), count, 0f);
    }

    // the kernels index lse/ce by (base + first + row); the regions here already start at row `first`
    @Override
    public void crossEntropyForward(Region logits, Region lse, Region ce, int first, int rows, int vocab) {
        ops.crossEntropyForward(at(logits), at(lse) - first, at(ce) - first, first, rows, vocab);
    }

    @Override
    public void crossEntropyBackward(Region logits, Region lse, Region dce, int first, int rows, int vocab) {
        ops.crossEntropyBackward(at(logits), at(lse) - first, at(dce) - first, first, rows, vocab);
    }

    @Override
    public double[] exitObjective(Region z, Region ce, Region p, Region dz, Region dce, int n, int steps,
                                  Objective objective, int tokens) {
        boolean one = objective.trainsLm();
        float scale = (float) (one ? 1.0 / tokens : 1.0 / ((double) tokens * steps));
        ops.exitObjective(at(z), at(ce), at(p), at(dz), at(dce), n, steps, one, scale, (float) objective.beta(),
                (float) objective.k(), (float) objective.gamma());
        ops.download(Buffer.METRICS);
        float[] met = ops.read(Buffer.METRICS);
        double[] out = new double[1 + 2 * steps];
        for (int r = 0; r < n; r++) {
            out[0] += met[r];
        }
        for (int t = 0; t < 2 * steps; t++) {
            out[1 + t] = met[n + t];
        }
        return out;
    }

    @Override
    public double gradSumSquares() {
        int off = rows + 2 * cfg.steps();
        ops.gradSumSquares(off, NORM_PARTIALS);
        ops.download(Buffer.METRICS);
        float[] met = ops.read(Buffer.METRICS);
        double ss = 0;
        for (int i = 0; i < segments.count() * NORM_PARTIALS; i++) {
            ss += met[off + i];
        }
        return ss;
    }

    @Override
    public void scaleGrads(float factor) {
        ops.scaleGrads(factor);
    }

    @Override
    public void divideGrads(float divisor) {
        ops.divideGrads(divisor);
    }

    @Override
    public void zeroGrads() {
        for (int seg = 0; seg < segments.count(); seg++) {
            ops.fill(OpenClOps.grads(seg), 0, (int) segments.size(seg), 0f);
        }
    }

    @Override
    public void adamw(TensorView t, float keep, float beta1, float beta2, float stepSize, float sqrtBc2, float eps) {
        ops.adamw(segments.segment(t), segments.local(t), segments.local(t), t.len(), keep, beta1, beta2, stepSize,
                sqrtBc2, eps);
        headTFresh = false;
    }

    /** AdamW on {@code len} parameters of segment seg from {@code off}, their moments from {@code momentOff}. */
    public void adamw(int seg, int off, int momentOff, int len, float keep, float beta1, float beta2, float stepSize,
                      float sqrtBc2, float eps) {
        ops.adamw(seg, off, momentOff, len, keep, beta1, beta2, stepSize, sqrtBc2, eps);
        headTFresh = false;
    }

    /**
     * Parameters ({@code grads} false) or gradients [from, from + len) of the flat layout, times {@code scale}, into
     * {@code dst[off, off + len)}; only the range crosses to the host.
     */
    public void readRange(boolean grads, long from, float[] dst, int off, int len, float scale) {
        for (int seg = 0; seg < segments.count(); seg++) {
            long a = Math.max(from, segments.start(seg)), b = Math.min(from + len, segments.start(seg) + segments.size(seg));
            if (a < b) {
                ops.readRange(grads, seg, (int) (a - segments.start(seg)), dst, off + (int) (a - from), (int) (b - a), scale);
            }
        }
    }

    /** Writes {@code src[off, off + len)} over parameters or gradients [from, from + len) of the flat layout. */
    public void writeRange(boolean grads, long from, float[] src, int off, int len) {
        for (int seg = 0; seg < segments.count(); seg++) {
            long a = Math.max(from, segments.start(seg)), b = Math.min(from + len, segments.start(seg) + segments.size(seg));
            if (a < b) {
                ops.writeRange(grads, seg, (int) (a - segments.start(seg)), src, off + (int) (a - from), (int) (b - a));
            }
        }
        if (!grads) {
            headTFresh = false;
        }
    }

    // the offset of t in its segment, which must be seg
    private int local(TensorView t, int seg) {
        if (segments.segment(t) != seg) {
            throw new IllegalStateException(t.name() + " is not in parameter segment " + seg);
        }
        return segments.local(t);
    }

    private static int at(Region r) {
        if (r.array() != 0) {
            throw new IllegalArgumentException("OpenClStepOps has one activation buffer, not " + r);
        }
        return r.offset();
    }

    @Override
    public void close() {
        if (ops != null) {
            ops.close();
        }
    }
}
