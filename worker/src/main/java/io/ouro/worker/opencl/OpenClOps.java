package io.ouro.worker.opencl;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.model.MatmulPrecision;

/**
 * The device side of the OpenCL backend: one method per training op, each setting its {@link LoopKernel} op by name
 * and launching it. The layers below hold the rest: {@link DeviceBuffers} the buffers and which copy is current,
 * {@link KernelLaunches} the launch shapes and the profile, {@link GemmOps} the GEMM kernels; decoding's ops are in
 * {@link OpenClDecodeOps}. Buffers stay on the device between ops; {@link #upload}/{@link #download} move them. All
 * offsets and sizes are in floats.
 */
public final class OpenClOps extends GemmOps implements AutoCloseable {

    /**
     * A device buffer: the parameters, gradients or Adam moments of parameter segment {@code index} (at most
     * {@link #PARAM_SEGMENTS}); the activation arena (one buffer for residency, however many windows it spans); the
     * metrics; the token and target ids; the stash buffers (device only); the exchange buffer.
     */
    public record Buffer(Kind kind, int index) {

        public enum Kind { PARAMS, GRADS, MOM1, MOM2, ACT, METRICS, TOKENS, TARGETS, STASH, EXCHANGE }

        public static final Buffer PARAMS = new Buffer(Kind.PARAMS, 0), GRADS = new Buffer(Kind.GRADS, 0),
                MOM1 = new Buffer(Kind.MOM1, 0), MOM2 = new Buffer(Kind.MOM2, 0), ACT = new Buffer(Kind.ACT, 0),
                METRICS = new Buffer(Kind.METRICS, 0), TOKENS = new Buffer(Kind.TOKENS, 0),
                TARGETS = new Buffer(Kind.TARGETS, 0), STASH = new Buffer(Kind.STASH, 0),
                EXCHANGE = new Buffer(Kind.EXCHANGE, 0);

        public Buffer {
            if (index < 0 || index >= (segmented(kind) ? LoopKernel.SEGMENTS : 1)) {
                throw new IllegalArgumentException(kind + " has no buffer " + index);
            }
        }

        private static boolean segmented(Kind k) {
            return k == Kind.PARAMS || k == Kind.GRADS || k == Kind.MOM1 || k == Kind.MOM2;
        }

        /** Gradients and moments: absent from a forward-only model. */
        boolean trainingOnly() {
            return kind == Kind.GRADS || kind == Kind.MOM1 || kind == Kind.MOM2;
        }

        /** The operand selector of the GEMM, fill and transpose ({@link LoopKernel#SEL_PARAMS} ...). */
        int selector() {
            return switch (kind) {
                case PARAMS -> LoopKernel.SEL_PARAMS + index;
                case GRADS -> LoopKernel.SEL_GRADS + index;
                case ACT -> LoopKernel.SEL_ACT;
                default -> throw new IllegalArgumentException(this + " is not a GEMM, fill or transpose operand");
            };
        }

        @Override
        public String toString() {
            return index == 0 ? kind.name() : kind.name() + index;
        }
    }

    /** Profile names of the CPU dot-product GEMM and of the tensor-core GEMM, instruction or emulated. */
    public static final String DOT_NAME = DeviceOp.CL_GEMM_DOT.profileName(), TC_NAME = DeviceOp.CL_GEMM_TC.profileName(),
            TC_EMULATED_NAME = DeviceOp.TC_EMULATED_NAME;

    /**
     * Which kernel {@link #gemm} runs: AUTO picks the hand-written OpenCL C ({@link ClKernels}) for the device (the
     * register-blocked one on a CPU, the tiled one elsewhere, the tensor-core one where the device passed
     * {@link TensorCores#probe} under bf16_tensor); OUTER, TILED and TENSOR force one (parity tests, benchmarks;
     * TENSOR without the probe's yes runs the instruction's emulation, gemm_tc.cl); DOT forces, on a CPU device, the
     * dot-product kernel that AUTO uses for the layouts the register-blocked one declines (operands that are not
     * k-contiguous transposed into the scratch first); TRANSLATED is the Java kernel Aparapi translates, the
     * reference twin.
     */
    public enum GemmKernel { AUTO, OUTER, TILED, TRANSLATED, TENSOR, DOT }

    /**
     * Whether attention runs the hand-written OpenCL C kernels (default on CPU devices: their per-item
     * accumulators, OURO_AQ x 128 floats, suit a CPU's stack, not a GPU's registers) or the translated twin.
     */
    private boolean handAttention;

    /**
     * Whether attention runs the flash kernels (flash.cl: a work-group per block of queries or keys, tiles in local
     * memory; the default on devices that are not CPUs), ahead of {@link #handAttention}.
     */
    private boolean flashAttention;

    /** Cross-entropy on the hand-written OpenCL C kernels (xent.cl): the CPU default. */
    private boolean handCrossEntropy;

    /**
     * The work-group reductions (reduce.cl): cross-entropy with a work-group per row, the RMSNorm weight gradient
     * summed in blocks of rows and then over the blocks, the embedding backward per (column, distinct token) over the
     * token index ({@link TokenIndex}). The GPU default: the translated ops' item per row or column
     * gives a launch a few thousand items, too few to fill a GPU. Off on CPU devices, where xent.cl's item per row
     * walking its row in 16-wide vectors is the faster. Takes precedence over {@link #handCrossEntropy}.
     */
    private boolean reduction;
    /** Where the RMSNorm weight gradient's partial sums go (act), and its floats: -1 when none was given. */
    private int reductionScratch = -1, reductionScratchSize;

    /** Allocates the buffers and compiles the kernel for {@code device}; fails if it does not run as OpenCL. */
    public OpenClOps(OpenCLDevice device, int paramSize, int actSize) {
        this(device, paramSize, actSize, 1, 1);
    }

    /**
     * @param metricsSize floats of per-step outputs (per-token losses, per-step sums, norm partials)
     * @param rows        tokens per step (the size of the token and target buffers)
     */
    public OpenClOps(OpenCLDevice device, int paramSize, int actSize, int metricsSize, int rows) {
        this(device, new int[]{paramSize}, actSize, metricsSize, rows, new int[0]);
    }

    /**
     * @param paramSegments floats of each parameter segment (one to {@link #PARAM_SEGMENTS}), each with its gradient
     *                      and moments
     * @param stashSizes    floats of each stash buffer (at most {@link LoopKernel#STASH_SLOTS}), reached by
     *                      {@link #copyAcross}
     */
    public OpenClOps(OpenCLDevice device, int[] paramSegments, long actSize, int metricsSize, int rows, int[] stashSizes) {
        this(device, paramSegments, actSize, metricsSize, rows, stashSizes, true);
    }

    /**
     * @param actSize  floats of the activation arena, at global offsets [0, actSize): windows of
     *                 {@link #ACT_WINDOW} floats, each its own device buffer
     * @param training false for a forward-only model (evaluation, decoding): no gradient and no Adam moment buffers
     *                 are allocated (one-float placeholders), and an op that would touch them is an error
     */
    public OpenClOps(OpenCLDevice device, int[] paramSegments, long actSize, int metricsSize, int rows, int[] stashSizes,
                     boolean training) {
        this(device, paramSegments, actSize, metricsSize, rows, stashSizes, training, MatmulPrecision.FP32);
    }

    /** @param matmul the products' precision (see {@link ClKernels#install(MatmulPrecision, OpenCLDevice)}) */
    public OpenClOps(OpenCLDevice device, int[] paramSegments, long actSize, int metricsSize, int rows, int[] stashSizes,
                     boolean training, MatmulPrecision matmul) {
        this(device, paramSegments, null, actSize, metricsSize, rows, stashSizes, training, matmul);
    }

    /** @param momentSegments floats of Adam's moments per segment (a ZeRO-1 slice), null: as the parameters */
    public OpenClOps(OpenCLDevice device, int[] paramSegments, int[] momentSegments, long actSize, int metricsSize,
                     int rows, int[] stashSizes, boolean training, MatmulPrecision matmul) {
        super(device, paramSegments, momentSegments, actSize, metricsSize, rows, stashSizes, training, matmul);
        this.handAttention = cpuDevice;
        this.flashAttention = !cpuDevice;
        this.handCrossEntropy = cpuDevice;
        this.reduction = !cpuDevice;
    }

    /**
     * Runs cross-entropy, the RMSNorm weight gradient and the embedding backward as the reductions of reduce.cl (the
     * GPU default) or not (then {@link #useHandCrossEntropy} and the translated ops decide).
     */
    public void useReduction(boolean on) {
        reduction = on;
    }

    /**
     * The activation region [off, off + size) that the RMSNorm weight gradient's partial sums may use
     * ({@link #reductionScratchFloats}); without one, or one too small, the weight gradient takes the translated op.
     */
    public void setReductionScratch(int off, int size) {
        reductionScratch = off;
        reductionScratchSize = size;
    }

    /** Floats of partial sums the RMSNorm weight gradient over {@code rows} rows of {@code width} needs. */
    public static long reductionScratchFloats(int rows, int width) {
        return (long) blocks(rows) * width;
    }

    // blocks of rows of the RMSNorm weight gradient's first pass
    private static int blocks(int rows) {
        return (rows + ClKernels.DW_ROWS - 1) / ClKernels.DW_ROWS;
    }

    /** Runs cross-entropy as the hand-written OpenCL C kernels (xent.cl; the CPU default) or the translated twins. */
    public void useHandCrossEntropy(boolean hand) {
        handCrossEntropy = hand;
    }

    /** Runs attention (forward and backward) as the hand-written OpenCL C kernels (true) or the translated twins. */
    public void useHandAttention(boolean hand) {
        handAttention = hand;
    }

    /**
     * Runs attention as the flash kernels (flash.cl; the default on GPUs) or, with false, as {@link #useHandAttention}
     * says. Forced on pocl by the parity tests.
     */
    public void useFlashAttention(boolean flash) {
        flashAttention = flash;
    }

    public void fill(Buffer b, int off, int count, float value) {
        reads(b);
        k.setFill(b.selector(), off, count, value);
        launchElementwise(count);
        wrote(b);
    }

    // act[acc + i] += act[x + i]
    public void add(int accOff, int xOff, int count) {
        reads(Buffer.ACT);
        k.setAdd(accOff, xOff, count);
        launchElementwise(count);
        wrote(Buffer.ACT);
    }

    // m = silu(g) * u, all in act
    public void swigluForward(int mOff, int gOff, int uOff, int count) {
        reads(Buffer.ACT);
        k.setSwigluForward(mOff, gOff, uOff, count);
        launchElementwise(count);
        wrote(Buffer.ACT);
    }

    // dm -> dg +=, du +=, all in act
    public void swigluBackward(int dgOff, int duOff, int dmOff, int gOff, int uOff, int count) {
        reads(Buffer.ACT);
        k.setSwigluBackward(dgOff, duOff, dmOff, gOff, uOff, count);
        launchElementwise(count);
        wrote(Buffer.ACT);
    }

    // x (N,D) act -> y (N,D) act, rstd (N) act; weight in params
    public void rmsnormForward(int yOff, int rstdOff, int xOff, int wOff, int n, int d, float eps) {
        rmsnormForward(yOff, rstdOff, xOff, 0, wOff, n, d, eps);
    }

    // the same with the weight in parameter segment seg
    public void rmsnormForward(int yOff, int rstdOff, int xOff, int seg, int wOff, int n, int d, float eps) {
        reads(Buffer.ACT, params(seg));
        k.setRmsnormForward(yOff, rstdOff, xOff, seg, wOff, n, d, eps);
        launch1D(n);
        wrote(Buffer.ACT);
    }

    // dy -> dx += (act); dw += (grads at dwOff) unless dwOff < 0
    public void rmsnormBackward(int dxOff, int dwOff, int dyOff, int xOff, int rstdOff, int wOff, int n, int d) {
        rmsnormBackward(dxOff, dwOff, dyOff, xOff, rstdOff, 0, wOff, n, d);
    }

    // the same with the weight (and its gradient) in parameter segment seg
    public void rmsnormBackward(int dxOff, int dwOff, int dyOff, int xOff, int rstdOff, int seg, int wOff, int n, int d) {
        reads(Buffer.ACT, params(seg), grads(seg));
        k.setRmsnormBackwardDx(dxOff, dyOff, xOff, rstdOff, seg, wOff, n, d);
        launch1D(n);
        wrote(Buffer.ACT);
        if (dwOff < 0) {
            return;
        }
        if (reduction && reductionScratch >= 0 && n > 0 && reductionScratchFloats(n, d) <= reductionScratchSize) {
            // partial sums over blocks of rows, (columns, blocks) items, then one pass over the blocks per column
            k.setRmsnormDwPartial(reductionScratch, dyOff, xOff, rstdOff, n, d);
            execute(Range.create2D(device, roundUp(d, GROUP), blocks(n), GROUP, 1));
            wrote(Buffer.ACT);
            k.setRmsnormDwSum(dwOff, seg, reductionScratch, blocks(n), d);
        } else {
            k.setRmsnormBackwardDw(dwOff, dyOff, xOff, rstdOff, seg, n, d);
        }
        launch1D(d);
        wrote(grads(seg));
    }

    // rotates x (rows, heads, hd) in act in place; forward or its transpose
    public void rope(int xOff, int rows, int seqLen, int heads, int hd, boolean forward) {
        reads(Buffer.ACT);
        k.setRope(xOff, rows, seqLen, heads, hd, forward);
        launchElementwise(k.ropePairs());
        wrote(Buffer.ACT);
    }

    // h (N,D) act = embedding rows of TOKENS from the table at tableOff in parameter segment seg
    public void embedForward(int hOff, int seg, int tableOff, int n, int d) {
        reads(Buffer.ACT, params(seg), Buffer.TOKENS);
        k.setEmbedForward(hOff, seg, tableOff, n, d);
        launch1D(n * d);
        wrote(Buffer.ACT);
    }

    // dh (N,D) act -> the table's gradient rows in segment seg +=, rows summed in order per column
    public void embedBackward(int seg, int tableOff, int dhOff, int n, int d) {
        reads(Buffer.ACT, grads(seg), Buffer.TOKENS);
        if (n > tokenRows()) {
            throw new IllegalArgumentException("an embedding backward over " + n + " rows; the token buffer holds "
                    + tokenRows());
        }
        if (reduction) {
            // an item per (column, distinct token) over the index built when the ids were uploaded, not one per column
            int tokens = tokenGroups(), columns = roundUp(d, GROUP);
            k.setEmbedBackwardByToken(seg, tableOff, dhOff, n, d, columns, TokenIndex.order(tokenRows()),
                    TokenIndex.starts(tokenRows()), tokens);
            if (d > 0 && tokens > 0) {
                execute(Range.create(device, Math.multiplyExact(columns, tokens), GROUP));
            }
        } else {
            k.setEmbedBackward(seg, tableOff, dhOff, n, d);
            launch1D(d);
        }
        wrote(grads(seg));
    }

    /**
     * Causal attention forward; keeps only each query row's log-sum-exp ({@code lseOff}, B*H*S floats), so
     * memory grows with S, not S^2.
     */
    public void attentionForward(int outOff, int lseOff, int qOff, int kOff, int vOff,
                                 int batch, int seqLen, int heads, int hd) {
        reads(Buffer.ACT);
        // flash.cl on a GPU, the OpenCL C kernel tiled over keys (gemm.cl) on a CPU, or their translated twin
        AttentionKernel kernel = attentionKernel(hd);
        k.setAttentionForward(outOff, lseOff, qOff, kOff, vOff, batch, seqLen, heads, hd, kernel.forward);
        launchAttention(kernel, batch, seqLen, heads);
        wrote(Buffer.ACT);
    }

    /** dout -> dq, dk, dv +=, recomputing the probabilities from q, k and the forward's lse; out is the forward's output. */
    public void attentionBackward(int dqOff, int dkOff, int dvOff, int doutOff, int outOff, int lseOff,
                                  int qOff, int kOff, int vOff, int batch, int seqLen, int heads, int hd) {
        reads(Buffer.ACT);
        AttentionKernel kernel = attentionKernel(hd);
        for (DeviceOp pass : new DeviceOp[] {kernel.backwardQ, kernel.backwardKv}) {
            k.setAttentionBackward(dqOff, dkOff, dvOff, doutOff, outOff, lseOff, qOff, kOff, vOff, batch, seqLen,
                    heads, hd, pass);
            launchAttention(kernel, batch, seqLen, heads);
        }
        wrote(Buffer.ACT);
    }

    /** The three twins of attention: forward, dq and dk/dv ops of each. */
    private enum AttentionKernel {
        TRANSLATED(DeviceOp.ATTN_FWD, DeviceOp.ATTN_BWD_Q, DeviceOp.ATTN_BWD_KV),
        CPU(DeviceOp.CL_ATTN_FWD, DeviceOp.CL_ATTN_BWD_Q, DeviceOp.CL_ATTN_BWD_KV),
        FLASH(DeviceOp.CL_FLASH_FWD, DeviceOp.CL_FLASH_BWD_Q, DeviceOp.CL_FLASH_BWD_KV);

        final DeviceOp forward, backwardQ, backwardKv;

        AttentionKernel(DeviceOp forward, DeviceOp backwardQ, DeviceOp backwardKv) {
            this.forward = forward;
            this.backwardQ = backwardQ;
            this.backwardKv = backwardKv;
        }
    }

    // a hand-written attention where asked and the head fits its accumulators, else the translated one
    private AttentionKernel attentionKernel(int hd) {
        if (hd > ClKernels.ATTN_MAX_HEAD) {
            return AttentionKernel.TRANSLATED;
        }
        return flashAttention ? AttentionKernel.FLASH : handAttention ? AttentionKernel.CPU : AttentionKernel.TRANSLATED;
    }

    // work items: one per query (or key); per ClKernels.ATTN_QUERIES of them in the CPU kernels; in flash, a group of
    // ClKernels.FLASH_ROWS per block of that many queries (or keys), items past the sequence idle
    private void launchAttention(AttentionKernel kernel, int batch, int seqLen, int heads) {
        if (kernel == AttentionKernel.FLASH) {
            int groups = batch * heads * ((seqLen + ClKernels.FLASH_ROWS - 1) / ClKernels.FLASH_ROWS);
            if (groups > 0) {
                execute(Range.create(device, groups * ClKernels.FLASH_ROWS, ClKernels.FLASH_ROWS));
            }
        } else {
            launch1D(batch * heads * (kernel == AttentionKernel.CPU
                    ? (seqLen + ClKernels.ATTN_QUERIES - 1) / ClKernels.ATTN_QUERIES : seqLen));
        }
    }

    // rows [first, first + rows) with logits (rows,V) at logitsOff -> lse, ce at lseOff/ceOff + row
    public void crossEntropyForward(int logitsOff, int lseOff, int ceOff, int first, int rows, int vocab) {
        reads(Buffer.ACT, Buffer.TARGETS);
        k.setCrossEntropyForward(reduction ? DeviceOp.CL_CE_FWD_WG : handCrossEntropy ? DeviceOp.CL_CE_FWD
                : DeviceOp.CE_FWD, logitsOff, lseOff, ceOff, first, rows, vocab);
        launchRows(rows);
        wrote(Buffer.ACT);
    }

    // in place: logits -> dce * (softmax - onehot)
    public void crossEntropyBackward(int logitsOff, int lseOff, int dceOff, int first, int rows, int vocab) {
        reads(Buffer.ACT, Buffer.TARGETS);
        k.setCrossEntropyBackward(reduction ? DeviceOp.CL_CE_BWD_WG : handCrossEntropy ? DeviceOp.CL_CE_BWD
                : DeviceOp.CE_BWD, logitsOff, lseOff, dceOff, first, rows, vocab);
        launchRows(rows);
        wrote(Buffer.ACT);
    }

    // the cross-entropy set: a work-group of ClKernels.CE_GROUP per row (exactly `rows` groups) or an item per row
    private void launchRows(int rows) {
        if (!reduction) {
            launch1D(rows);
        } else if (rows > 0) {
            execute(Range.create(device, rows * ClKernels.CE_GROUP, ClKernels.CE_GROUP));
        }
    }

    // act[off + i] += params[biasOff]
    public void biasAdd(int off, int biasOff, int count) {
        biasAdd(off, 0, biasOff, count);
    }

    // the same with the bias in parameter segment seg
    public void biasAdd(int off, int seg, int biasOff, int count) {
        reads(Buffer.ACT, params(seg));
        k.setBiasAdd(off, seg, biasOff, count);
        launch1D(count);
        wrote(Buffer.ACT);
    }

    // grads[gradOff] += sum of act[off, off + count)
    public void sumToGrad(int gradOff, int off, int count) {
        sumToGrad(0, gradOff, off, count);
    }

    // the same with the gradient in parameter segment seg
    public void sumToGrad(int seg, int gradOff, int off, int count) {
        reads(Buffer.ACT, grads(seg));
        k.setSumToGrad(seg, gradOff, off, count);
        launch1D(1);
        wrote(grads(seg));
    }

    /**
     * Copies {@code count} values between slots: 0 is the activation buffer, 1 + i stash buffer i. Stash buffers
     * live on the device only (they are never uploaded or read back). With {@code bf16} they hold bfloat16 values
     * ({@code bf16.cl}): into a stash buffer each float is rounded to the nearest bfloat16 (ties to even) and stored in
     * 16 bits at the 16-bit offset {@code dstOff}; out of one, widened back; then exactly one side is a stash buffer.
     */
    public void copyAcross(int dstSlot, int dstOff, int srcSlot, int srcOff, int count, boolean bf16) {
        if (bf16 && (dstSlot == 0) == (srcSlot == 0)) {
            throw new IllegalArgumentException("a bfloat16 stash copy goes between the activation buffer and a stash "
                    + "buffer, not " + srcSlot + " -> " + dstSlot);
        }
        reads(Buffer.ACT, Buffer.STASH);
        k.setStashCopy(dstSlot, dstOff, srcSlot, srcOff, count, bf16);
        launchElementwise(count);
        wrote(Buffer.ACT);
        wrote(Buffer.STASH);
    }

    public void copy(int dstOff, int srcOff, int count) {
        reads(Buffer.ACT);
        k.setCopy(dstOff, srcOff, count);
        launchElementwise(count);
        wrote(Buffer.ACT);
    }

    /**
     * Exit distribution and objective per token; (T,N) arrays in act. Writes p, dz, dce (Stage I) and
     * metrics[r] = the token's share of the loss, then metrics[N + t] / metrics[N + T + t] = the sums of
     * CE_t / p_t over tokens with a target.
     */
    public void exitObjective(int zOff, int ceOff, int pOff, int dzOff, int dceOff, int n, int steps,
                              boolean stageOne, float scale, float beta, float k50, float gamma) {
        reads(Buffer.ACT, Buffer.TARGETS, Buffer.METRICS);
        k.setExitObjective(zOff, ceOff, pOff, dzOff, dceOff, n, steps, stageOne, scale, beta, k50, gamma);
        launch1D(n);
        k.setStepMeans();
        launch1D(steps);
        wrote(Buffer.ACT);
        wrote(Buffer.METRICS);
    }

    /**
     * Partial sums of squares of the gradient into metrics: segment s's {@code partials} partial sums at
     * {@code metricsOff + s * partials}.
     */
    public void gradSumSquares(int metricsOff, int partials) {
        for (int seg = 0; seg < segments.length; seg++) {
            reads(grads(seg), Buffer.METRICS);
            int total = segments[seg];
            k.setGradSumSquares(seg, metricsOff + seg * partials, partials, total);
            launch1D(partials);
            wrote(Buffer.METRICS);
        }
    }

    public void scaleGrads(float factor) {
        scaleGrads(factor, false);
    }

    /** Divides every gradient by {@code divisor}. */
    public void divideGrads(float divisor) {
        scaleGrads(divisor, true);
    }

    // every gradient times f, or divided by it
    private void scaleGrads(float f, boolean divide) {
        for (int seg = 0; seg < segments.length; seg++) {
            reads(grads(seg));
            k.setScaleGrads(seg, segments[seg], f, divide);
            launchElementwise(segments[seg]);
            wrote(grads(seg));
        }
    }

    /** AdamW on params[off, off + len) with the update of {@link io.ouro.worker.model.AdamW}. */
    public void adamw(int off, int len, float keep, float beta1, float beta2, float stepSize, float sqrtBc2, float eps) {
        adamw(0, off, off, len, keep, beta1, beta2, stepSize, sqrtBc2, eps);
    }

    /**
     * The same on parameter segment seg, its moments from {@code momentOff} in that segment's moment buffers (equal to
     * {@code off} unless the moments are sharded: {@link #resizeMoments}).
     */
    public void adamw(int seg, int off, int momentOff, int len, float keep, float beta1, float beta2, float stepSize,
                      float sqrtBc2, float eps) {
        Buffer m1 = moments(0, seg), m2 = moments(1, seg);
        reads(params(seg), grads(seg), m1, m2);
        k.setAdamw(seg, off, momentOff, len, keep, beta1, beta2, stepSize, sqrtBc2, eps);
        launchElementwise(len);
        wrote(params(seg));
        wrote(m1);
        wrote(m2);
    }

    /**
     * Copies {@code scale} times parameters ({@code grads} false) or gradients [off, off + len) of segment seg into
     * {@code dst[dstOff, dstOff + len)} through the exchange buffer: only the range crosses to the host.
     */
    public void readRange(boolean grads, int seg, int off, float[] dst, int dstOff, int len, float scale) {
        ensureExchange(len);
        reads(grads ? grads(seg) : params(seg));
        k.setRangeOut(grads, seg, off, len, scale);
        launchElementwise(len);
        wrote(Buffer.EXCHANGE);
        download(Buffer.EXCHANGE);
        System.arraycopy(read(Buffer.EXCHANGE), 0, dst, dstOff, len);
    }

    /** Writes {@code src[srcOff, srcOff + len)} over parameters or gradients [off, off + len) of segment seg. */
    public void writeRange(boolean grads, int seg, int off, float[] src, int srcOff, int len) {
        ensureExchange(len);
        Buffer target = grads ? grads(seg) : params(seg);
        reads(target);
        System.arraycopy(src, srcOff, host(Buffer.EXCHANGE), 0, len);
        upload(Buffer.EXCHANGE);
        k.setRangeIn(grads, seg, off, len);
        launchElementwise(len);
        wrote(target);
    }
}
