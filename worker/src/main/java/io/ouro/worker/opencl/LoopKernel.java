package io.ouro.worker.opencl;

import io.ouro.worker.opencl.DeviceOp.Code;

/**
 * Every device op of the training step and of decoding in one Aparapi kernel, so that all ops share one set of
 * explicit device buffers (see {@link KernelFields} for how the kernel is written across its superclasses). This
 * class holds {@link #run()}, a dispatch on {@link #op} to the op bodies, and the translated GEMM, whose barrier
 * loop must stay in {@code run()} itself.
 *
 * <p>Two rules keep this correct on every OpenCL driver. Barriers are only ever reached by all work items: they sit
 * at the top level of {@link #run()}, inside a loop whose trip count ({@link #tiles}, {@link #phases}) is the same
 * for the whole launch and zero for ops without barriers; pocl hangs on a barrier inside an {@code if} even when the
 * condition is uniform. And there is no {@code switch}: Aparapi cannot translate it, and it mistranslates long
 * else-if chains ("child list broken"), so each op is its own plain {@code if}.
 */
public final class LoopKernel extends DecodeKernels {

    /**
     * C (m, n) (= or +=) A B^T with element (r, c) of X at xOff + r*xRs + c*xCs in the buffer the selector xSel
     * names, on the kernel {@code variant}: {@link DeviceOp#GEMM} (translated, below), or the hand-written
     * {@link DeviceOp#CL_GEMM_TILED}, {@link DeviceOp#CL_GEMM_TC}, {@link DeviceOp#CL_GEMM_DOT} or
     * {@link DeviceOp#CL_GEMM_OUTER} (then {@link #setOuterPanels} too).
     */
    void setGemm(DeviceOp variant, int cSel, int cOff, int cRs, int cCs, int aSel, int aOff, int aRs, int aCs,
                 int bSel, int bOff, int bRs, int bCs, int m, int n, int kk, boolean accumulate) {
        if (!variant.gemm()) {
            throw new IllegalArgumentException(variant + " is not a GEMM");
        }
        begin(variant);
        tiles = variant == DeviceOp.GEMM ? (kk + K_TILE - 1) / K_TILE : 0;
        this.gm = m;
        this.gn = n;
        this.gk = kk;
        this.accumulate = accumulate ? 1 : 0;
        this.aSel = aSel;
        this.aOff = aOff;
        this.aRs = aRs;
        this.aCs = aCs;
        this.bSel = bSel;
        this.bOff = bOff;
        this.bRs = bRs;
        this.bCs = bCs;
        this.cSel = cSel;
        this.cOff = cOff;
        this.cRs = cRs;
        this.cCs = cCs;
    }

    /** For {@link DeviceOp#CL_GEMM_OUTER}: whether A and B are packed panels, and whether rows are walked first. */
    void setOuterPanels(boolean packedA, boolean packedB, boolean swap) {
        o0 = packedA ? 1 : 0;
        o1 = packedB ? 1 : 0;
        o2 = swap ? 1 : 0;
    }

    /** Whether {@link DeviceOp#CL_GEMM_OUTER} reads B as packed panels (profiling). */
    boolean outerPackedB() {
        return o1 == 1;
    }

    /**
     * act[dst + p*panel*kk + k*panel + r] = X(p*panel + r, k) for X (rows, kk) at off + r*rs + k*cs in the operand sel,
     * zero past rows: the register-blocked GEMM's panels (gemm.cl).
     */
    void setPack(int dst, int sel, int off, int rs, int cs, int rows, int kk, int panel) {
        begin(DeviceOp.CL_PACK);
        aSel = sel;
        aOff = off;
        aRs = rs;
        aCs = cs;
        gm = rows;
        gk = kk;
        n1 = panel;
        o0 = dst;
    }

    /**
     * The n values act[src, src + n) rounded to bfloat16 (bf16.cl's ouro_act_bf16) as 16-bit values from the global
     * offset dst on: an activation range a tensor-core product reads, rounded once for the products that read it.
     */
    void setActivationCopy(int dst, int src, int n) {
        begin(DeviceOp.CL_ACT_BF16);
        o0 = dst;
        o1 = src;
        n0 = n;
    }

    /** Stores one micro-tile row: C(r, c + 8j) for j = 0..7, within bounds. */
    void storeRow(int r, int c, float v0, float v1, float v2, float v3, float v4, float v5, float v6, float v7) {
        if (r < gm) {
            if (c + 0 < gn) {
                store(cSel, cOff + r * cRs + (c + 0) * cCs, v0, accumulate);
            }
            if (c + 8 < gn) {
                store(cSel, cOff + r * cRs + (c + 8) * cCs, v1, accumulate);
            }
            if (c + 16 < gn) {
                store(cSel, cOff + r * cRs + (c + 16) * cCs, v2, accumulate);
            }
            if (c + 24 < gn) {
                store(cSel, cOff + r * cRs + (c + 24) * cCs, v3, accumulate);
            }
            if (c + 32 < gn) {
                store(cSel, cOff + r * cRs + (c + 32) * cCs, v4, accumulate);
            }
            if (c + 40 < gn) {
                store(cSel, cOff + r * cRs + (c + 40) * cCs, v5, accumulate);
            }
            if (c + 48 < gn) {
                store(cSel, cOff + r * cRs + (c + 48) * cCs, v6, accumulate);
            }
            if (c + 56 < gn) {
                store(cSel, cOff + r * cRs + (c + 56) * cCs, v7, accumulate);
            }
        }
    }

    /**
     * The hand-written ops: this Java body is never what runs. {@link ClKernels} replaces its translation with a call
     * into hand.cl before the kernel is first compiled, and fails if it cannot.
     */
    void handWritten(int gx, int gy, int lx, int ly) {
        int variant = hand + aCopy + bCopy; // makes them kernel arguments, which the OpenCL C reads
        // and the weight copy read-write buffers (only the OpenCL C touches them: the refresh writes, the GEMM reads)
        wh0[0] += wh1[0] + wh2[0] + wh3[0];
        wh1[0] += wh0[0];
        wh2[0] += wh0[0];
        wh3[0] += wh0[0];
        wh4[0] += wh5[0] + wh6[0] + wh7[0];
        wh5[0] += wh4[0];
        wh6[0] += wh4[0];
        wh7[0] += wh4[0];
    }

    /**
     * Phase p of the hand-written op {@link DeviceOp.Code#PHASES} runs (replaced like {@link #handWritten}, by a
     * function without barriers: the barrier after each phase is {@link #run()}'s).
     */
    void handPhase(int gx, int p, int lx, int ly) {
        int variant = hand;
    }

    @Override
    public void run() {
        int gx = getGlobalId(0);
        int gy = getGlobalId(1);
        int lx = getLocalId(0);
        int ly = getLocalId(1);

        if (op == Code.HAND) { handWritten(gx, gy, lx, ly); }
        if (op == Code.FILL) { fill(gx); }
        if (op == Code.ADD) { add(gx); }
        if (op == Code.SWIGLU_FWD) { swigluForward(gx); }
        if (op == Code.SWIGLU_BWD) { swigluBackward(gx); }
        if (op == Code.RMSNORM_FWD) { rmsnormForward(gx); }
        if (op == Code.RMSNORM_BWD_DX) { rmsnormBackwardDx(gx); }
        if (op == Code.RMSNORM_BWD_DW) { rmsnormBackwardDw(gx); }
        if (op == Code.ROPE) { rope(gx); }
        if (op == Code.EMBED_FWD) { embedForward(gx); }
        if (op == Code.EMBED_BWD) { embedBackward(gx); }
        if (op == Code.ATTN_FWD) { attentionForward(gx); }
        if (op == Code.ATTN_BWD_Q) { attentionBackwardQ(gx); }
        if (op == Code.ATTN_BWD_KV) { attentionBackwardKv(gx); }
        if (op == Code.CE_FWD) { crossEntropyForward(gx); }
        if (op == Code.CE_BWD) { crossEntropyBackward(gx); }
        if (op == Code.BIAS_ADD) { biasAdd(gx); }
        if (op == Code.SUM_TO_GRAD) { sumToGrad(gx); }
        if (op == Code.COPY) { copy(gx); }
        if (op == Code.XCOPY) { stashCopy(gx); }
        if (op == Code.TRANSPOSE) { transpose(gx); }
        if (op == Code.EXIT) { exitObjective(gx); }
        if (op == Code.STEP_MEANS) { stepMeans(gx); }
        if (op == Code.SUMSQ) { gradSumSquares(gx); }
        if (op == Code.SCALE) { scaleGrads(gx); }
        if (op == Code.RANGE_OUT) { rangeOut(gx); }
        if (op == Code.RANGE_IN) { rangeIn(gx); }
        if (op == Code.ADAMW) { adamw(gx); }
        if (op == Code.ROPE_AT) { ropeAt(gx); }
        if (op == Code.ATTN_CACHED) { attendCached(gx); }
        if (op == Code.MEAN) { mean(gx); }
        if (op == Code.TO_METRICS) { toMetrics(gx); }
        if (op == Code.RMSNORM_ADD) { rmsnormAdd(gx); }
        if (op == Code.GEMV) { gemv(gx); }

        // tiled GEMM; for every other op tiles == 0 and this loop and its barriers are skipped uniformly.
        // A work-group of 8 x 32 items computes a 64 x 64 block of C, each item a 2 x 8 micro-tile
        // (rows ly + 32i, columns lx + 8j), from 64 x 64 slices of A and B staged in local memory. Both
        // slices are stored with k contiguous (rows padded to 65 words against local-memory bank conflicts on GPUs), so
        // the inner loop over k reads unit-stride rows of both
        // (a CPU driver vectorizes it as 16 dot products; a GPU reads broadcast/neighbouring words).
        int rowBase = (gy - ly) * 2;
        int colBase = (gx - lx) * 8;
        float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f, c04 = 0f, c05 = 0f, c06 = 0f, c07 = 0f;
        float c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f, c14 = 0f, c15 = 0f, c16 = 0f, c17 = 0f;
        for (int t = 0; t < tiles; t++) {
            for (int e = 0; e < 16; e++) {
                int idx = e * 256 + ly * 8 + lx;
                int rr = idx / 64;
                int kc = idx % 64;
                int kg = t * 64 + kc;
                float va = 0f;
                float vb = 0f;
                if (kg < gk) {
                    if (rowBase + rr < gm) {
                        va = load(aSel, aOff + (rowBase + rr) * aRs + kg * aCs);
                    }
                    if (colBase + rr < gn) {
                        vb = load(bSel, bOff + (colBase + rr) * bRs + kg * bCs);
                    }
                }
                tileA[rr * 65 + kc] = va;
                tileB[rr * 65 + kc] = vb;
            }
            localBarrier();
            for (int q = 0; q < 64; q++) {
                float a0 = tileA[(ly + 0) * 65 + q];
                float a1 = tileA[(ly + 32) * 65 + q];
                float b0 = tileB[(lx + 0) * 65 + q];
                float b1 = tileB[(lx + 8) * 65 + q];
                float b2 = tileB[(lx + 16) * 65 + q];
                float b3 = tileB[(lx + 24) * 65 + q];
                float b4 = tileB[(lx + 32) * 65 + q];
                float b5 = tileB[(lx + 40) * 65 + q];
                float b6 = tileB[(lx + 48) * 65 + q];
                float b7 = tileB[(lx + 56) * 65 + q];
                c00 += a0 * b0;
                c01 += a0 * b1;
                c02 += a0 * b2;
                c03 += a0 * b3;
                c04 += a0 * b4;
                c05 += a0 * b5;
                c06 += a0 * b6;
                c07 += a0 * b7;
                c10 += a1 * b0;
                c11 += a1 * b1;
                c12 += a1 * b2;
                c13 += a1 * b3;
                c14 += a1 * b4;
                c15 += a1 * b5;
                c16 += a1 * b6;
                c17 += a1 * b7;
            }
            localBarrier();
        }
        if (op == Code.GEMM) {
            int r0 = rowBase + ly;
            int cc = colBase + lx;
            storeRow(r0 + 0, cc, c00, c01, c02, c03, c04, c05, c06, c07);
            storeRow(r0 + 32, cc, c10, c11, c12, c13, c14, c15, c16, c17);
        }

        // the phases of Code.PHASES (one work-group; the hand-written op reads the phase as gy), a barrier on local and
        // global memory after each; phases == 0 for every other op, so this loop and its barriers are skipped uniformly
        for (int p = 0; p < phases; p++) {
            handPhase(gx, p, lx, ly);
            localGlobalBarrier();
        }
    }
}
