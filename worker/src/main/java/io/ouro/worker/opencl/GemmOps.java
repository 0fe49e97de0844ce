package io.ouro.worker.opencl;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.opencl.OpenClOps.GemmKernel;

/**
 * The GEMM of an {@link OpenClOps}, C (= or +=) A B^T over any strides: which kernel runs it on this device
 * ({@link GemmKernel}), the packing of operands into panels and the transposes that let the fast kernels take every
 * layout, and the scratch region they use.
 */
abstract class GemmOps extends KernelLaunches {

    /** Work-group of the register-blocked GEMM on a CPU device, in micro-tiles (tuned on pocl: see docs/opencl.md). */
    private static final int OUTER_GROUP_X = 4, OUTER_GROUP_Y = 4;

    /** Rows of C from which the register-blocked GEMM packs B (below, B is read in place or the twin runs). */
    private static final int PACK_MIN_ROWS = 512;

    /**
     * Longest k the register-blocked GEMM walks in one launch when it reads its operands in place: a longer product
     * (the LM head's input gradient, k = vocab) runs as launches over k-slices accumulating into C, so each slice of
     * A and B stays in the last-level cache while every micro-tile walks it (see README, OpenCL C kernels).
     */
    private int outerKChunk = 4096;

    private boolean outerSwap = true;

    /** Whether this device runs gemm_tc.cl with the tensor-core instruction (TensorCores' probe passed). */
    private final boolean tensorCores;

    /** The products' precision ({@code train.matmul}): AUTO runs the tensor-core GEMM only for BF16_TENSOR. */
    private final MatmulPrecision matmul;

    private GemmKernel gemmKernel = GemmKernel.AUTO;

    /** Whether the tensor-core GEMM reads a parameter-segment B from the weights' bfloat16 copy (when one is kept). */
    private boolean readWeightCopy = true;

    /**
     * The activation copies ({@link #setActivationCopy}): the arena offsets of the slots (none: operands in the arena
     * are read as fp32), the 16-bit values each holds, and whether products read them.
     */
    private int[] actCopySlots = new int[0];
    private long actCopyValues;
    private boolean readActCopy = true;
    /** When each slot was last read or made (a count of products): a miss takes the least recently used. */
    private final long[] actSlotUse = new long[ACT_COPY_SLOTS];
    private long actUses;

    private int transposeScratch = -1, transposeScratchSize;

    /** Compiles the kernel's program with the GEMM {@code matmul} asks for on this device. */
    GemmOps(OpenCLDevice device, int[] paramSegments, int[] momentSegments, long actSize, int metricsSize, int rows,
            int[] stashSizes, boolean training, MatmulPrecision matmul) {
        super(device, paramSegments, momentSegments, actSize, metricsSize, rows, stashSizes, training);
        // the tensor-core instruction goes into the program only for bf16_tensor on a device that ran it in the probe
        this.matmul = matmul;
        this.tensorCores = ClKernels.install(matmul, device);
        KernelCheck.requireOpenCl(k, device);
        if (matmul == MatmulPrecision.BF16_TENSOR) {
            keepWeightCopy(); // counted by MemoryPlan for bf16_tensor, whichever GEMM the device runs
        }
    }

    /**
     * Whether the tensor-core GEMM reads its weight operand (B, a parameter segment) from the weights' bfloat16 copy
     * (true, the default where one is kept: under {@code train.matmul: bf16_tensor}) or fetches the fp32 weights and
     * rounds them as it stages them (false). Both give the same bits; true asks for the copy if none is kept yet.
     */
    public void useWeightCopy(boolean on) {
        if (on) {
            keepWeightCopy();
        }
        readWeightCopy = on;
    }

    /**
     * Gives the tensor-core GEMM {@link DeviceBuffers#ACT_COPY_SLOTS} regions of the activation arena (global offsets,
     * each of {@code valuesPerSlot} 16-bit values, two per float) for bfloat16 copies of the activation operands it
     * reads: an operand in the arena of at most that many values is rounded into a slot once, at the first product
     * that reads it, and read from there by every product until a write that may overlap it (the backend's
     * {@code train.matmul: bf16_tensor} layout places them: {@link OpenClStepOps#layout}).
     */
    public void setActivationCopy(int[] slotOffsets, long valuesPerSlot) {
        if (slotOffsets.length != ACT_COPY_SLOTS) {
            throw new IllegalArgumentException(slotOffsets.length + " activation copy slots, expected " + ACT_COPY_SLOTS);
        }
        actCopySlots = slotOffsets.clone();
        actCopyValues = valuesPerSlot;
        for (int s = 0; s < ACT_COPY_SLOTS; s++) {
            actCopyMade(s, 0, 0);
        }
    }

    /** Whether products read activation operands from their copies (true, the default where slots are set) or not. */
    public void useActivationCopy(boolean on) {
        readActCopy = on;
    }

    // how a tensor-core product reads its operands: aSlot / bSlot the activation copy slot (-1: none), bWeights B
    // from the weights' copy
    private record TensorOperands(int aSlot, int bSlot, boolean bWeights) {
    }

    /**
     * Decides how a tensor-core product reads A and B, first making the copies it reads that are not fresh: the weights'
     * copy of B's segment when it changed since (the optimizer step, a load, an all-gather), an activation range's
     * copy when no slot holds it (a miss takes a slot the other operand does not read).
     */
    private TensorOperands tensorOperands(Buffer a, int aOff, long aExt, Buffer b, int bOff, long bExt) {
        boolean weights = readWeightCopy && weightCopy() && b.kind() == Buffer.Kind.PARAMS;
        if (weights && weightCopyStale(b.index())) {
            int seg = b.index();
            k.setWeightCopy(seg, segments[seg]);
            launchElementwise(segments[seg]);
            weightCopyMade(seg);
        }
        int sa = actCopyHit(a, aOff, aExt), sb = weights ? -1 : actCopyHit(b, bOff, bExt);
        if (sa < 0 && actCopyFits(a, aExt)) {
            sa = actCopyMake(aOff, aExt, sb);
        }
        if (sb < 0 && !weights && actCopyFits(b, bExt)) {
            sb = actCopyMake(bOff, bExt, sa);
        }
        return new TensorOperands(sa, sb, weights);
    }

    private boolean actCopyFits(Buffer x, long ext) {
        return readActCopy && actCopySlots.length > 0 && x.equals(Buffer.ACT) && ext <= actCopyValues;
    }

    private int actCopyHit(Buffer x, int off, long ext) {
        if (actCopyFits(x, ext)) {
            for (int s = 0; s < actCopySlots.length; s++) {
                if (actCopyFresh(s, off, ext)) {
                    actSlotUse[s] = ++actUses;
                    return s;
                }
            }
        }
        return -1;
    }

    // rounds act[off, off + ext) into a slot other than `avoid` (-1: any), an empty one or else the least recently
    // used, and returns it
    private int actCopyMake(int off, long ext, int avoid) {
        int s = -1;
        for (int i = 0; i < ACT_COPY_SLOTS; i++) {
            if (i != avoid && (s < 0 || (actCopyHeld(s) ? actSlotUse[s] : -1) > (actCopyHeld(i) ? actSlotUse[i] : -1))) {
                s = i;
            }
        }
        actSlotUse[s] = ++actUses;
        k.setActivationCopy(actCopySlots[s], off, (int) ext);
        launchElementwise((int) ext);
        wroteAct(actCopySlots[s], bf16Floats(ext));
        actCopyMade(s, off, ext);
        return s;
    }

    // after setGemm: the operands' registers as decided
    private void bindTensorOperands(TensorOperands t) {
        if (t.aSlot() >= 0) {
            k.aCopy = 2;
            k.aOff = actCopySlots[t.aSlot()];
        }
        if (t.bWeights()) {
            k.bCopy = 1;
        } else if (t.bSlot() >= 0) {
            k.bCopy = 2;
            k.bOff = actCopySlots[t.bSlot()];
        }
    }

    // C(i,j) (= or +=) sum_k A(i,k) B(j,k), C (m,n), with element (r,c) of X at xOff + r*xRs + c*xCs
    public void gemm(Buffer c, int cOff, int cRs, int cCs, Buffer a, int aOff, int aRs, int aCs,
                     Buffer b, int bOff, int bRs, int bCs, int m, int n, int kk, boolean accumulate) {
        reads(a, b, c);
        if (gemmKernel != GemmKernel.TRANSLATED && gemmKernel != GemmKernel.DOT
                && handGemm(c, cOff, cRs, cCs, a, aOff, aRs, aCs, b, bOff, bRs, bCs, m, n, kk, accumulate)) {
            return;
        }
        // On a CPU device the layouts the register-blocked GEMM declines run as plain dot products over k
        // (gemm.cl's ouro_gemm_dot), which pocl vectorizes (about 2.4x the tiled kernel there): operands that are not
        // k-contiguous are first transposed into the scratch region. GPUs, products whose operands do not fit the
        // scratch, and the translated twin (TRANSLATED) take the translated tiled kernel.
        boolean dot = cpuDevice && gemmKernel != GemmKernel.TRANSLATED;
        if (dot && (aCs != 1 || bCs != 1) && transposeScratch >= 0 && (aCs == 1 || aRs == 1)
                && (bCs == 1 || bRs == 1) && readable(a) && readable(b)
                && (aCs == 1 ? 0L : (long) m * kk) + (bCs == 1 ? 0L : (long) n * kk) <= transposeScratchSize) {
            int at = transposeScratch, bt = transposeScratch + (aCs == 1 ? 0 : m * kk);
            if (aCs != 1) {
                transpose(at, a, aOff, kk, m, aCs);
            }
            if (bCs != 1) {
                transpose(bt, b, bOff, kk, n, bCs);
            }
            gemm(c, cOff, cRs, cCs, aCs == 1 ? a : Buffer.ACT, aCs == 1 ? aOff : at, aCs == 1 ? aRs : kk, 1,
                    bCs == 1 ? b : Buffer.ACT, bCs == 1 ? bOff : bt, bCs == 1 ? bRs : kk, 1, m, n, kk, accumulate);
            return;
        }
        if (dot && aCs == 1 && bCs == 1 && a.equals(Buffer.ACT) && readable(b)) {
            setGemm(DeviceOp.CL_GEMM_DOT, c, cOff, cRs, cCs, a, aOff, aRs, aCs, b, bOff, bRs, bCs, m, n, kk, accumulate);
            execute(Range.create2D(device, roundUp((n + 3) / 4, 8), roundUp((m + 3) / 4, 8), 8, 8));
            wroteProduct(c, cOff, m, cRs, n, cCs);
            return;
        }
        setGemm(DeviceOp.GEMM, c, cOff, cRs, cCs, a, aOff, aRs, aCs, b, bOff, bRs, bCs, m, n, kk, accumulate);
        int tx = LoopKernel.TILE_X, ty = LoopKernel.TILE_Y;
        // each work-group covers a 64 x 64 block of C
        execute(Range.create2D(device, (n + 63) / 64 * tx, (m + 63) / 64 * ty, tx, ty));
        wroteProduct(c, cOff, m, cRs, n, cCs);
    }

    // a product wrote C (m, n) and nothing else: in the arena, only the activation copies of ranges it overlaps go
    private void wroteProduct(Buffer c, int cOff, int m, int cRs, int n, int cCs) {
        if (c.equals(Buffer.ACT)) {
            wroteAct(cOff, extent(m, cRs, n, cCs));
        } else {
            wrote(c);
        }
    }

    /** Sets the longest k-slice of the register-blocked GEMM on operands read in place (benchmarks; default 4096). */
    public void setOuterKChunk(int chunk) {
        outerKChunk = Math.max(16, chunk);
    }

    /** Whether the register-blocked GEMM walks the rows first for C wider than tall (benchmarks; default true). */
    public void setOuterSwap(boolean swap) {
        outerSwap = swap;
    }

    /** Selects the GEMM kernel (see {@link GemmKernel}). */
    public void useGemm(GemmKernel g) {
        gemmKernel = g;
    }

    /** Whether this device passed {@link TensorCores#probe} and the program issues the tensor-core instruction. */
    public boolean tensorCores() {
        return tensorCores;
    }

    /** Whether {@link #gemm} runs the tensor-core kernel with the instruction (bf16 operands) as set now. */
    public boolean usesTensorCores() {
        return tensorCores && effectiveGemm() == GemmKernel.TENSOR;
    }

    /** The variant {@link #gemm} runs as set now: {@link GemmKernel#AUTO} resolved for this device. */
    public GemmKernel effectiveGemm() {
        return gemmKernel != GemmKernel.AUTO ? gemmKernel : cpuDevice ? GemmKernel.OUTER
                : tensorCores && matmul == MatmulPrecision.BF16_TENSOR ? GemmKernel.TENSOR : GemmKernel.TILED;
    }

    public GemmKernel gemmKernel() {
        return gemmKernel;
    }

    /**
     * The GEMM in hand-written OpenCL C; false when the chosen variant does not take this layout and the translated
     * kernel runs it. The register-blocked one needs C with j contiguous; it packs B (and A, when both fit) into the
     * scratch region in panels of its micro-tile, so that each work item streams contiguous memory, and without room
     * there it reads a B with j contiguous in place.
     */
    private boolean handGemm(Buffer c, int cOff, int cRs, int cCs, Buffer a, int aOff, int aRs, int aCs,
                             Buffer b, int bOff, int bRs, int bCs, int m, int n, int kk, boolean accumulate) {
        GemmKernel g = effectiveGemm();
        boolean packA = false, packB = false;
        if (g == GemmKernel.OUTER) {
            if (cCs != 1) {
                return false;
            }
            long pb = (long) roundUp(n, ClKernels.OUTER_NR) * kk, pa = (long) roundUp(m, ClKernels.OUTER_MR) * kk;
            // packing B costs a pass over it per call: worth it when many row tiles reuse it (measured in the step:
            // the LM head's 50257 x 256 weight packed for each block of rows cost more than it saved)
            boolean room = transposeScratch >= 0
                    && !(c.equals(Buffer.ACT) && overlapsScratch(cOff, extent(m, cRs, n, cCs)))
                    && !(a.equals(Buffer.ACT) && overlapsScratch(aOff, extent(m, aRs, kk, aCs)))
                    && !(b.equals(Buffer.ACT) && overlapsScratch(bOff, extent(n, bRs, kk, bCs)));
            packB = room && m >= PACK_MIN_ROWS && pb <= transposeScratchSize;
            // A only when its rows are neither contiguous nor i-contiguous (never in the step's layouts)
            packA = packB && aRs != 1 && aCs != 1 && pa + pb <= transposeScratchSize;
            if (!packB && bRs != 1) {
                return false;
            }
            if (packB) {
                pack(transposeScratch, b, bOff, bRs, bCs, n, kk, ClKernels.OUTER_NR);
                b = Buffer.ACT;
                bOff = transposeScratch;
            }
            if (packA) {
                pack(transposeScratch + (int) pb, a, aOff, aRs, aCs, m, kk, ClKernels.OUTER_MR);
                a = Buffer.ACT;
                aOff = transposeScratch + (int) pb;
            }
        }
        if (g == GemmKernel.OUTER) {
            // packed panels are laid out for the whole k; operands read in place can be walked in k-slices
            int chunk = packA || packB || kk <= outerKChunk ? kk : outerKChunk;
            for (int k0 = 0; k0 < kk; k0 += chunk) {
                setGemm(DeviceOp.CL_GEMM_OUTER, c, cOff, cRs, cCs, a, aOff + k0 * aCs, aRs, aCs, b, bOff + k0 * bCs,
                        bRs, bCs, m, n, Math.min(chunk, kk - k0), accumulate || k0 > 0);
                launchOuter(packA, packB, m, n);
            }
        } else if (g == GemmKernel.TENSOR) {
            TensorOperands t = tensorOperands(a, aOff, extent(m, aRs, kk, aCs), b, bOff, extent(n, bRs, kk, bCs));
            setGemm(DeviceOp.CL_GEMM_TC, c, cOff, cRs, cCs, a, aOff, aRs, aCs, b, bOff, bRs, bCs, m, n, kk, accumulate);
            bindTensorOperands(t);
            launchTensor(m, n, false);
        } else {
            setGemm(DeviceOp.CL_GEMM_TILED, c, cOff, cRs, cCs, a, aOff, aRs, aCs, b, bOff, bRs, bCs, m, n, kk,
                    accumulate);
            execute(Range.create2D(device, (n + 63) / 64 * 16, (m + 63) / 64 * 16, 16, 16));
        }
        wroteProduct(c, cOff, m, cRs, n, cCs);
        return true;
    }

    // gemm_tc.cl over C (m, n), set by setGemm: work-groups of 8 warps (local 16 x 16, as the tiled GEMM's, so that
    // pocl builds no other work-group size for it), each a 128 x 128 block of C; n0 = 1 is the fragment dump
    private void launchTensor(int m, int n, boolean fragments) {
        k.n0 = fragments ? 1 : 0;
        try {
            execute(Range.create2D(device, (n + 127) / 128 * 16, (m + 127) / 128 * 16, 16, 16));
        } finally {
            k.aCopy = 0;
            k.bCopy = 0;
        }
    }

    /**
     * Test hook for the tensor-core GEMM's operand loader: runs gemm_tc.cl's staging (the rounding to bfloat16 pairs,
     * the swizzled double-buffered local tiles) and fragment loads on A (m, kk) and B (n, kk) as {@link #gemm} would,
     * and writes the raw fragment registers each lane would feed the instruction, as uints (float bits), to act from
     * {@code dst} instead of multiplying: {@link #tensorFragmentWords} of them, register q of the lane with linear
     * id tid (warp tid / 32) in k16 step h of stage kt of block (by, bx) at
     * {@code ((((by * ceil(n/128) + bx) * ceil(kk/32) + kt) * 2 + h) * 256 + tid) * 24 + q}: q < 16 A tile q / 4
     * register q % 4, else B tile (q - 16) / 2 register q % 2.
     */
    void tensorFragments(int dst, Buffer a, int aOff, int aRs, int aCs, Buffer b, int bOff, int bRs, int bCs, int m,
                         int n, int kk) {
        reads(a, b, Buffer.ACT);
        TensorOperands t = tensorOperands(a, aOff, extent(m, aRs, kk, aCs), b, bOff, extent(n, bRs, kk, bCs));
        setGemm(DeviceOp.CL_GEMM_TC, Buffer.ACT, dst, 0, 0, a, aOff, aRs, aCs, b, bOff, bRs, bCs, m, n, kk, false);
        bindTensorOperands(t);
        try {
            launchTensor(m, n, true);
        } finally {
            k.n0 = 0;
        }
        wroteAct(dst, tensorFragmentWords(m, n, kk));
    }

    /** Words {@link #tensorFragments} writes. */
    static int tensorFragmentWords(int m, int n, int kk) {
        return (m + 127) / 128 * ((n + 127) / 128) * ((kk + 31) / 32) * 2 * 256 * 24;
    }

    /**
     * Packs X (rows, kk), element (r, k) at {@code off + r*rs + k*cs} in {@code x}, into act at {@code dst} as the
     * register-blocked GEMM's B panels (roundUp(rows, 16) * kk floats), for {@link #gemmPackedB}.
     */
    public void packPanels(int dst, Buffer x, int off, int rs, int cs, int rows, int kk) {
        reads(x, Buffer.ACT);
        pack(dst, x, off, rs, cs, rows, kk, ClKernels.OUTER_NR);
    }

    /**
     * C (m, n) (= or +=) A B^T on the register-blocked GEMM (CPU devices), B given as {@link #packPanels}' panels
     * at act[{@code bPanels}]: for a B used by many products between two changes (the LM head's weight).
     */
    public void gemmPackedB(Buffer c, int cOff, int cRs, Buffer a, int aOff, int aRs, int aCs, int bPanels, int m,
                            int n, int kk, boolean accumulate) {
        reads(a, c, Buffer.ACT);
        setGemm(DeviceOp.CL_GEMM_OUTER, c, cOff, cRs, 1, a, aOff, aRs, aCs, Buffer.ACT, bPanels, 1, ClKernels.OUTER_NR,
                m, n, kk, accumulate);
        launchOuter(false, true, m, n);
        wroteProduct(c, cOff, m, cRs, n, 1);
    }

    // the register-blocked GEMM over C (m, n), set by setGemm, with A and/or B in packed panels
    private void launchOuter(boolean packedA, boolean packedB, int m, int n) {
        int tx = (n + ClKernels.OUTER_NR - 1) / ClKernels.OUTER_NR, ty = (m + ClKernels.OUTER_MR - 1) / ClKernels.OUTER_MR;
        // neighbouring work-groups share A's rows (and stream B) or, for C wider than tall, B's panels (streaming
        // A): the larger operand is read from memory once, the smaller re-read from cache (measured: docs/opencl.md)
        boolean swap = outerSwap && n > m;
        k.setOuterPanels(packedA, packedB, swap);
        execute(swap ? Range.create2D(device, roundUp(ty, OUTER_GROUP_Y), roundUp(tx, OUTER_GROUP_X), OUTER_GROUP_Y,
                OUTER_GROUP_X) : Range.create2D(device, roundUp(tx, OUTER_GROUP_X), roundUp(ty, OUTER_GROUP_Y),
                OUTER_GROUP_X, OUTER_GROUP_Y));
    }

    // act[dst + p*P*kk + k*P + r] = X(pP + r, k), X (rows, kk) at off + j*rs + k*cs in x; zero past rows
    private void pack(int dst, Buffer x, int off, int rs, int cs, int rows, int kk, int panel) {
        k.setPack(dst, x.selector(), off, rs, cs, rows, kk, panel);
        int gx = (kk + 15) / 16, gy = (rows + panel - 1) / panel;
        execute(Range.create2D(device, roundUp(gx, 4), roundUp(gy, 4), 4, 4));
        wrote(Buffer.ACT);
    }

    private boolean overlapsScratch(int off, long extent) {
        return off < transposeScratch + (long) transposeScratchSize && off + extent > transposeScratch;
    }

    // floats from a matrix's first element to past its last
    private static long extent(int rows, int rs, int cols, int cs) {
        return (long) (rows - 1) * rs + (long) (cols - 1) * cs + 1;
    }

    private void setGemm(DeviceOp variant, Buffer c, int cOff, int cRs, int cCs, Buffer a, int aOff, int aRs, int aCs,
                         Buffer b, int bOff, int bRs, int bCs, int m, int n, int kk, boolean accumulate) {
        k.setGemm(variant, c.selector(), cOff, cRs, cCs, a.selector(), aOff, aRs, aCs, b.selector(), bOff, bRs, bCs, m,
                n, kk, accumulate);
    }

    // out (N,O) act = x (N,I) act . w (O,I)^T from buffer wBuf
    public void linearForward(int outOff, int xOff, Buffer wBuf, int wOff, int n, int in, int o) {
        gemm(Buffer.ACT, outOff, o, 1, Buffer.ACT, xOff, in, 1, wBuf, wOff, in, 1, n, o, in, false);
    }

    // dx (N,I) act += dout (N,O) act . w (O,I)
    public void linearBackwardInput(int dxOff, int doutOff, Buffer wBuf, int wOff, int n, int in, int o) {
        gemm(Buffer.ACT, dxOff, in, 1, Buffer.ACT, doutOff, o, 1, wBuf, wOff, 1, in, n, in, o, true);
    }

    // dw (O,I) in dwBuf += dout (N,O)^T act . x (N,I) act
    public void linearBackwardWeight(Buffer dwBuf, int dwOff, int doutOff, int xOff, int n, int in, int o) {
        gemm(dwBuf, dwOff, in, 1, Buffer.ACT, doutOff, 1, o, Buffer.ACT, xOff, 1, in, o, in, n, true);
    }

    /**
     * A region of act where {@link #gemm} may transpose operands that are not k-contiguous on a CPU device, so
     * that every layout runs as dot products; a product whose operands do not fit uses the tiled kernel.
     */
    public void setTransposeScratch(int off, int size) {
        transposeScratch = off;
        transposeScratchSize = size;
    }

    /** Whether this is a CPU device, where some layouts take other kernels. */
    public boolean cpuDevice() {
        return cpuDevice;
    }

    // act[dst + c*rows + r] = src[srcOff + r*cols + c]: the (rows, cols) matrix in src (PARAMS or ACT), transposed
    public void transpose(int dstOff, Buffer src, int srcOff, int rows, int cols) {
        transpose(dstOff, src, srcOff, rows, cols, cols);
    }

    // the same with source rows `stride` apart
    private void transpose(int dstOff, Buffer src, int srcOff, int rows, int cols, int stride) {
        if (!readable(src)) {
            throw new IllegalArgumentException("transpose reads parameters or ACT, not " + src);
        }
        reads(src, Buffer.ACT);
        k.setTranspose(dstOff, src.selector(), srcOff, rows, cols, stride);
        launchElementwise(k.transposeTiles());
        wrote(Buffer.ACT);
    }
}
