package io.ouro.worker.opencl;

import com.aparapi.Kernel;

/**
 * Every device op of the training step in one Aparapi kernel, so that all ops share one set of
 * explicit device buffers (Aparapi keeps device buffers per Kernel instance). {@link #op} selects the
 * op; the int fields below are its arguments, set by {@link OpenClOps} before each launch.
 *
 * <p>Buffers: {@code w0..w7} parameters, {@code g0..g7} gradients (one per parameter segment), {@code act0..act7}
 * the activation arena (every activation is a region at a global offset, see {@link #ACT_SHIFT}). Every buffer stays
 * below Aparapi 3.0.2's limit: it sizes buffers in a 32-bit int of bytes, so an array of 2^29 floats or more would
 * wrap (see {@link HostArrays#MAX_FLOATS}). A "selector" picks a GEMM or fill operand: {@link #SEL_PARAMS} + segment,
 * {@link #SEL_GRADS} + segment, or {@link #SEL_ACT}.
 *
 * <p>Two rules keep this correct on every OpenCL driver. Barriers are only ever reached by all work
 * items: they sit at the top level of {@link #run()}, inside a loop whose trip count ({@link #tiles})
 * is the same for the whole launch and zero for ops without barriers; pocl hangs on a barrier inside an
 * {@code if} even when the condition is uniform. And there is no {@code switch}: Aparapi cannot
 * translate it, and it mistranslates long else-if chains ("child list broken"), so each op is its own plain
 * {@code if}.
 */
public final class LoopKernel extends Kernel {

    /** Work-group side of the GEMM (16 x 16 items, 64 x 64 outputs) and the depth of its K slices. */
    static final int TILE_X = 8, TILE_Y = 32, K_TILE = 64;

    static final int OP_GEMM = 1, OP_FILL = 2, OP_ADD = 3, OP_SWIGLU_FWD = 4, OP_SWIGLU_BWD = 5,
            OP_RMSNORM_FWD = 6, OP_RMSNORM_BWD_DX = 7, OP_RMSNORM_BWD_DW = 8, OP_ROPE = 9,
            OP_EMBED_FWD = 10, OP_EMBED_BWD = 11, OP_ATTN_FWD = 12, OP_ATTN_BWD_Q = 13, OP_ATTN_BWD_KV = 14,
            OP_CE_FWD = 15, OP_CE_BWD = 16, OP_BIAS_ADD = 17, OP_EXIT = 18, OP_STEP_MEANS = 19, OP_SUMSQ = 20,
            OP_SCALE = 21, OP_ADAMW = 22, OP_SUM_TO_GRAD = 23, OP_COPY = 24,
            OP_TRANSPOSE = 26, OP_XCOPY = 27, OP_RANGE_OUT = 28, OP_RANGE_IN = 29;
    /** Decoding one token over a KV cache ({@code OpenClDecodeOps}). */
    static final int OP_ROPE_AT = 30, OP_ATTN_CACHED = 31, OP_MEAN = 32, OP_TO_METRICS = 33, OP_GEMV = 34,
            OP_RMSNORM_ADD = 35;
    /**
     * The hand-written OpenCL C ops ({@link ClKernels}): {@link #hand} says which. Aparapi's translation of
     * {@link #handWritten} is replaced by ClKernels' source in this kernel's program, so they reach the same
     * device buffers as every other op.
     */
    static final int OP_HAND = 36;
    /**
     * The hand-written op whose phases {@link #run()} runs one after another in one work-group, with a barrier after
     * each ({@link #phases} of them): the fused decode step ({@link ClKernels#DECODE_STEP}).
     */
    static final int OP_PHASES = 37;

    /** Stash buffers: hidden states kept across layers, reached only by {@link #OP_XCOPY} (slot 1 + index). */
    static final int STASH_SLOTS = 16;
    /** Parameter segments (each with its gradient and moments) the kernel addresses. */
    static final int SEGMENTS = 8;
    /**
     * The activation arena's windows: a global offset g is element {@code g & ACT_MASK} of window
     * {@code g >> ACT_SHIFT}, each window one buffer of at most ACT_WINDOW floats (1 GiB), at most ACT_PIECES of them
     * (2^31 floats in all, the reach of an int offset).
     */
    static final int ACT_SHIFT = 28, ACT_WINDOW = 1 << ACT_SHIFT, ACT_MASK = ACT_WINDOW - 1, ACT_PIECES = 8;
    /** GEMM and fill operand selectors: parameters and gradients of a segment (+ segment), the activations. */
    static final int SEL_PARAMS = 0, SEL_GRADS = 8, SEL_ACT = 16;

    /**
     * Parameters, gradients and Adam's two moments, in up to {@link #SEGMENTS} segments of at most
     * {@link HostArrays#MAX_FLOATS} floats each: tensors never straddle segments, and {@link #pseg} says which segment
     * an op's parameter tensor is in. Unused segments are one-float placeholders.
     */
    float[] w0 = new float[1], w1 = new float[1], w2 = new float[1], w3 = new float[1];
    float[] w4 = new float[1], w5 = new float[1], w6 = new float[1], w7 = new float[1];
    float[] g0 = new float[1], g1 = new float[1], g2 = new float[1], g3 = new float[1];
    float[] g4 = new float[1], g5 = new float[1], g6 = new float[1], g7 = new float[1];
    float[] ma0 = new float[1], ma1 = new float[1], ma2 = new float[1], ma3 = new float[1];
    float[] ma4 = new float[1], ma5 = new float[1], ma6 = new float[1], ma7 = new float[1];
    float[] mb0 = new float[1], mb1 = new float[1], mb2 = new float[1], mb3 = new float[1];
    float[] mb4 = new float[1], mb5 = new float[1], mb6 = new float[1], mb7 = new float[1];
    /**
     * The activation arena in up to {@link #ACT_PIECES} windows of {@link #ACT_WINDOW} floats: an op addresses it by
     * a global offset (window << ACT_SHIFT | element), and no region straddles two windows.
     */
    float[] act0 = new float[1], act1 = new float[1], act2 = new float[1], act3 = new float[1];
    float[] act4 = new float[1], act5 = new float[1], act6 = new float[1], act7 = new float[1];
    float[] ropeCos = new float[1];
    float[] ropeSin = new float[1];

    float[] metrics = new float[1];
    int[] tok = new int[1];
    float[] s0 = new float[1], s1 = new float[1], s2 = new float[1], s3 = new float[1];
    float[] s4 = new float[1], s5 = new float[1], s6 = new float[1], s7 = new float[1];
    float[] s8 = new float[1], s9 = new float[1], s10 = new float[1], s11 = new float[1];
    float[] s12 = new float[1], s13 = new float[1], s14 = new float[1], s15 = new float[1];
    int[] tgt = new int[1];
    /**
     * The exchange buffer: a range of the parameters or gradients on its way to or from the host (a gradient bucket
     * for the all-reduce, a parameter slice for ZeRO's all-gather), so that only the range crosses the bus.
     */
    float[] xg = new float[1];

    @Local
    float[] tileA = new float[64 * (K_TILE + 1)];
    @Local
    float[] tileB = new float[64 * (K_TILE + 1)];

    int op;
    /** Which hand-written op {@link #OP_HAND} runs, and its variant ({@link ClKernels}). */
    int hand;
    /**
     * Elements per work item of the elementwise ops (fill, add, copy, scale, SwiGLU, AdamW): 1 on a GPU,
     * a contiguous run on a CPU device, where per-item overhead dominates and a run vectorizes.
     */
    int chunk = 1;
    /** Trip count of the barrier loop: K slices for GEMM, 0 for every other op. */
    int tiles;
    /** Trip count of the phase loop: the phases of {@link #OP_PHASES}, 0 for every other op. */
    int phases;
    // GEMM: C(i,j) (= or +=) sum_k A(i,k) B(j,k); element (r,c) of X is at xOff + r*xRs + c*xCs in buffer xSel
    int gm, gn, gk, accumulate;
    int aSel, aOff, aRs, aCs, bSel, bOff, bRs, bCs, cSel, cOff, cRs, cCs;
    // the other ops: sizes n0, n1, n2, offsets o0..o5 into act (or the buffer named by cSel/aSel), a float
    int n0, n1, n2, n3, o0, o1, o2, o3, o4, o5, o6, o7, o8;
    /** Parameter segment of the op's tensor (embedding, norm weights, the gate bias, AdamW, gradient norms, GEMV). */
    int pseg;
    float f0, f1, f2, f3, f4, f5;

    /** Parameter idx of segment pseg. */
    float pw(int idx) {
        float x = 0f;
        if (pseg == 0) {
            x = w0[idx];
        }
        if (pseg == 1) {
            x = w1[idx];
        }
        if (pseg == 2) {
            x = w2[idx];
        }
        if (pseg == 3) {
            x = w3[idx];
        }
        if (pseg == 4) {
            x = w4[idx];
        }
        if (pseg == 5) {
            x = w5[idx];
        }
        if (pseg == 6) {
            x = w6[idx];
        }
        if (pseg == 7) {
            x = w7[idx];
        }
        return x;
    }

    /** Sets parameter idx of segment pseg. */
    void pset(int idx, float v) {
        if (pseg == 0) {
            w0[idx] = v;
        }
        if (pseg == 1) {
            w1[idx] = v;
        }
        if (pseg == 2) {
            w2[idx] = v;
        }
        if (pseg == 3) {
            w3[idx] = v;
        }
        if (pseg == 4) {
            w4[idx] = v;
        }
        if (pseg == 5) {
            w5[idx] = v;
        }
        if (pseg == 6) {
            w6[idx] = v;
        }
        if (pseg == 7) {
            w7[idx] = v;
        }
    }

    /** Gradient idx of segment pseg. */
    float gr(int idx) {
        float x = 0f;
        if (pseg == 0) {
            x = g0[idx];
        }
        if (pseg == 1) {
            x = g1[idx];
        }
        if (pseg == 2) {
            x = g2[idx];
        }
        if (pseg == 3) {
            x = g3[idx];
        }
        if (pseg == 4) {
            x = g4[idx];
        }
        if (pseg == 5) {
            x = g5[idx];
        }
        if (pseg == 6) {
            x = g6[idx];
        }
        if (pseg == 7) {
            x = g7[idx];
        }
        return x;
    }

    /** Sets gradient idx of segment pseg. */
    void gset(int idx, float v) {
        if (pseg == 0) {
            g0[idx] = v;
        }
        if (pseg == 1) {
            g1[idx] = v;
        }
        if (pseg == 2) {
            g2[idx] = v;
        }
        if (pseg == 3) {
            g3[idx] = v;
        }
        if (pseg == 4) {
            g4[idx] = v;
        }
        if (pseg == 5) {
            g5[idx] = v;
        }
        if (pseg == 6) {
            g6[idx] = v;
        }
        if (pseg == 7) {
            g7[idx] = v;
        }
    }

    /** Adds v to gradient idx of segment pseg. */
    void gradAdd(int idx, float v) {
        if (pseg == 0) {
            g0[idx] = g0[idx] + v;
        }
        if (pseg == 1) {
            g1[idx] = g1[idx] + v;
        }
        if (pseg == 2) {
            g2[idx] = g2[idx] + v;
        }
        if (pseg == 3) {
            g3[idx] = g3[idx] + v;
        }
        if (pseg == 4) {
            g4[idx] = g4[idx] + v;
        }
        if (pseg == 5) {
            g5[idx] = g5[idx] + v;
        }
        if (pseg == 6) {
            g6[idx] = g6[idx] + v;
        }
        if (pseg == 7) {
            g7[idx] = g7[idx] + v;
        }
    }

    /** Adam's first moment idx of segment pseg. */
    float m1r(int idx) {
        float x = 0f;
        if (pseg == 0) {
            x = ma0[idx];
        }
        if (pseg == 1) {
            x = ma1[idx];
        }
        if (pseg == 2) {
            x = ma2[idx];
        }
        if (pseg == 3) {
            x = ma3[idx];
        }
        if (pseg == 4) {
            x = ma4[idx];
        }
        if (pseg == 5) {
            x = ma5[idx];
        }
        if (pseg == 6) {
            x = ma6[idx];
        }
        if (pseg == 7) {
            x = ma7[idx];
        }
        return x;
    }

    /** Sets Adam's first moment idx of segment pseg. */
    void m1w(int idx, float v) {
        if (pseg == 0) {
            ma0[idx] = v;
        }
        if (pseg == 1) {
            ma1[idx] = v;
        }
        if (pseg == 2) {
            ma2[idx] = v;
        }
        if (pseg == 3) {
            ma3[idx] = v;
        }
        if (pseg == 4) {
            ma4[idx] = v;
        }
        if (pseg == 5) {
            ma5[idx] = v;
        }
        if (pseg == 6) {
            ma6[idx] = v;
        }
        if (pseg == 7) {
            ma7[idx] = v;
        }
    }

    /** Adam's second moment idx of segment pseg. */
    float m2r(int idx) {
        float x = 0f;
        if (pseg == 0) {
            x = mb0[idx];
        }
        if (pseg == 1) {
            x = mb1[idx];
        }
        if (pseg == 2) {
            x = mb2[idx];
        }
        if (pseg == 3) {
            x = mb3[idx];
        }
        if (pseg == 4) {
            x = mb4[idx];
        }
        if (pseg == 5) {
            x = mb5[idx];
        }
        if (pseg == 6) {
            x = mb6[idx];
        }
        if (pseg == 7) {
            x = mb7[idx];
        }
        return x;
    }

    /** Sets Adam's second moment idx of segment pseg. */
    void m2w(int idx, float v) {
        if (pseg == 0) {
            mb0[idx] = v;
        }
        if (pseg == 1) {
            mb1[idx] = v;
        }
        if (pseg == 2) {
            mb2[idx] = v;
        }
        if (pseg == 3) {
            mb3[idx] = v;
        }
        if (pseg == 4) {
            mb4[idx] = v;
        }
        if (pseg == 5) {
            mb5[idx] = v;
        }
        if (pseg == 6) {
            mb6[idx] = v;
        }
        if (pseg == 7) {
            mb7[idx] = v;
        }
    }

    /** Activation value at global offset g: window g >> ACT_SHIFT, element g & ACT_MASK of it. */
    float ar(int g) {
        int b = g >> ACT_SHIFT;
        int l = g & ACT_MASK;
        float x = 0f;
        if (b == 0) {
            x = act0[l];
        }
        if (b == 1) {
            x = act1[l];
        }
        if (b == 2) {
            x = act2[l];
        }
        if (b == 3) {
            x = act3[l];
        }
        if (b == 4) {
            x = act4[l];
        }
        if (b == 5) {
            x = act5[l];
        }
        if (b == 6) {
            x = act6[l];
        }
        if (b == 7) {
            x = act7[l];
        }
        return x;
    }

    /** Sets the activation value at global offset g. */
    void aw(int g, float v) {
        int b = g >> ACT_SHIFT;
        int l = g & ACT_MASK;
        if (b == 0) {
            act0[l] = v;
        }
        if (b == 1) {
            act1[l] = v;
        }
        if (b == 2) {
            act2[l] = v;
        }
        if (b == 3) {
            act3[l] = v;
        }
        if (b == 4) {
            act4[l] = v;
        }
        if (b == 5) {
            act5[l] = v;
        }
        if (b == 6) {
            act6[l] = v;
        }
        if (b == 7) {
            act7[l] = v;
        }
    }

    // selectors: SEL_PARAMS + s parameters of segment s, SEL_GRADS + s gradients of segment s, SEL_ACT activations
    // (a global offset); no call to ar(): Aparapi can emit a helper after the helper that calls it
    float load(int sel, int idx) {
        float x = 0f;
        if (sel == 0) {
            x = w0[idx];
        }
        if (sel == 1) {
            x = w1[idx];
        }
        if (sel == 2) {
            x = w2[idx];
        }
        if (sel == 3) {
            x = w3[idx];
        }
        if (sel == 4) {
            x = w4[idx];
        }
        if (sel == 5) {
            x = w5[idx];
        }
        if (sel == 6) {
            x = w6[idx];
        }
        if (sel == 7) {
            x = w7[idx];
        }
        if (sel == 8) {
            x = g0[idx];
        }
        if (sel == 9) {
            x = g1[idx];
        }
        if (sel == 10) {
            x = g2[idx];
        }
        if (sel == 11) {
            x = g3[idx];
        }
        if (sel == 12) {
            x = g4[idx];
        }
        if (sel == 13) {
            x = g5[idx];
        }
        if (sel == 14) {
            x = g6[idx];
        }
        if (sel == 15) {
            x = g7[idx];
        }
        if (sel == SEL_ACT) {
            int b = idx >> ACT_SHIFT;
            int l = idx & ACT_MASK;
            if (b == 0) {
                x = act0[l];
            }
            if (b == 1) {
                x = act1[l];
            }
            if (b == 2) {
                x = act2[l];
            }
            if (b == 3) {
                x = act3[l];
            }
            if (b == 4) {
                x = act4[l];
            }
            if (b == 5) {
                x = act5[l];
            }
            if (b == 6) {
                x = act6[l];
            }
            if (b == 7) {
                x = act7[l];
            }
        }
        return x;
    }

    void store(int sel, int idx, float v, int add) {
        if (sel == 0) {
            w0[idx] = add == 1 ? w0[idx] + v : v;
        }
        if (sel == 1) {
            w1[idx] = add == 1 ? w1[idx] + v : v;
        }
        if (sel == 2) {
            w2[idx] = add == 1 ? w2[idx] + v : v;
        }
        if (sel == 3) {
            w3[idx] = add == 1 ? w3[idx] + v : v;
        }
        if (sel == 4) {
            w4[idx] = add == 1 ? w4[idx] + v : v;
        }
        if (sel == 5) {
            w5[idx] = add == 1 ? w5[idx] + v : v;
        }
        if (sel == 6) {
            w6[idx] = add == 1 ? w6[idx] + v : v;
        }
        if (sel == 7) {
            w7[idx] = add == 1 ? w7[idx] + v : v;
        }
        if (sel == 8) {
            g0[idx] = add == 1 ? g0[idx] + v : v;
        }
        if (sel == 9) {
            g1[idx] = add == 1 ? g1[idx] + v : v;
        }
        if (sel == 10) {
            g2[idx] = add == 1 ? g2[idx] + v : v;
        }
        if (sel == 11) {
            g3[idx] = add == 1 ? g3[idx] + v : v;
        }
        if (sel == 12) {
            g4[idx] = add == 1 ? g4[idx] + v : v;
        }
        if (sel == 13) {
            g5[idx] = add == 1 ? g5[idx] + v : v;
        }
        if (sel == 14) {
            g6[idx] = add == 1 ? g6[idx] + v : v;
        }
        if (sel == 15) {
            g7[idx] = add == 1 ? g7[idx] + v : v;
        }
        if (sel == SEL_ACT) {
            int b = idx >> ACT_SHIFT;
            int l = idx & ACT_MASK;
            if (b == 0) {
                act0[l] = add == 1 ? act0[l] + v : v;
            }
            if (b == 1) {
                act1[l] = add == 1 ? act1[l] + v : v;
            }
            if (b == 2) {
                act2[l] = add == 1 ? act2[l] + v : v;
            }
            if (b == 3) {
                act3[l] = add == 1 ? act3[l] + v : v;
            }
            if (b == 4) {
                act4[l] = add == 1 ? act4[l] + v : v;
            }
            if (b == 5) {
                act5[l] = add == 1 ? act5[l] + v : v;
            }
            if (b == 6) {
                act6[l] = add == 1 ? act6[l] + v : v;
            }
            if (b == 7) {
                act7[l] = add == 1 ? act7[l] + v : v;
            }
        }
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

    /** Stores C(r, c + j) for j = 0..3, within bounds. */
    void storeRow4(int r, int c, float v0, float v1, float v2, float v3) {
        if (r < gm) {
            if (c + 0 < gn) {
                store(cSel, cOff + r * cRs + (c + 0) * cCs, v0, accumulate);
            }
            if (c + 1 < gn) {
                store(cSel, cOff + r * cRs + (c + 1) * cCs, v1, accumulate);
            }
            if (c + 2 < gn) {
                store(cSel, cOff + r * cRs + (c + 2) * cCs, v2, accumulate);
            }
            if (c + 3 < gn) {
                store(cSel, cOff + r * cRs + (c + 3) * cCs, v3, accumulate);
            }
        }
    }

    // slot 0 is act, slot 1 + i stash buffer i; plain ifs, as Aparapi mistranslates long else-if chains
    float slotLoad(int slot, int idx) {
        float x = 0f;
        if (slot == 0) {
            x = ar(idx);
        }
        if (slot == 1) {
            x = s0[idx];
        }
        if (slot == 2) {
            x = s1[idx];
        }
        if (slot == 3) {
            x = s2[idx];
        }
        if (slot == 4) {
            x = s3[idx];
        }
        if (slot == 5) {
            x = s4[idx];
        }
        if (slot == 6) {
            x = s5[idx];
        }
        if (slot == 7) {
            x = s6[idx];
        }
        if (slot == 8) {
            x = s7[idx];
        }
        if (slot == 9) {
            x = s8[idx];
        }
        if (slot == 10) {
            x = s9[idx];
        }
        if (slot == 11) {
            x = s10[idx];
        }
        if (slot == 12) {
            x = s11[idx];
        }
        if (slot == 13) {
            x = s12[idx];
        }
        if (slot == 14) {
            x = s13[idx];
        }
        if (slot == 15) {
            x = s14[idx];
        }
        if (slot == 16) {
            x = s15[idx];
        }
        return x;
    }

    void slotStore(int slot, int idx, float x) {
        if (slot == 0) {
            aw(idx, x);
        }
        if (slot == 1) {
            s0[idx] = x;
        }
        if (slot == 2) {
            s1[idx] = x;
        }
        if (slot == 3) {
            s2[idx] = x;
        }
        if (slot == 4) {
            s3[idx] = x;
        }
        if (slot == 5) {
            s4[idx] = x;
        }
        if (slot == 6) {
            s5[idx] = x;
        }
        if (slot == 7) {
            s6[idx] = x;
        }
        if (slot == 8) {
            s7[idx] = x;
        }
        if (slot == 9) {
            s8[idx] = x;
        }
        if (slot == 10) {
            s9[idx] = x;
        }
        if (slot == 11) {
            s10[idx] = x;
        }
        if (slot == 12) {
            s11[idx] = x;
        }
        if (slot == 13) {
            s12[idx] = x;
        }
        if (slot == 14) {
            s13[idx] = x;
        }
        if (slot == 15) {
            s14[idx] = x;
        }
        if (slot == 16) {
            s15[idx] = x;
        }
    }

    /**
     * The hand-written ops: this Java body is never what runs. {@link ClKernels} replaces its translation with the
     * OpenCL C of {@code gemm.cl} before the kernel is first compiled, and fails if it cannot.
     */
    void handWritten(int gx, int gy, int lx, int ly) {
        int variant = hand; // makes hand one of the kernel's arguments, which the OpenCL C reads
    }

    /**
     * Phase p of the hand-written op {@link #OP_PHASES} runs (replaced like {@link #handWritten}, by a function
     * without barriers: the barrier after each phase is {@link #run()}'s).
     */
    void handPhase(int gx, int p, int lx, int ly) {
        int variant = hand;
    }

    float sigmoid(float x) {
        return 1f / (1f + exp(-x));
    }

    float softplus(float x) {
        float r = 0f;
        if (x > 0f) {
            r = x + log(1f + exp(-x));
        } else {
            r = log(1f + exp(x));
        }
        return r;
    }

    @Override
    public void run() {
        int gx = getGlobalId(0);
        int gy = getGlobalId(1);
        int lx = getLocalId(0);
        int ly = getLocalId(1);

        if (op == OP_HAND) {
            handWritten(gx, gy, lx, ly);
        }
        if (op == OP_FILL) {
            // fill(buffer cSel, [o0, o0 + n0)) = f0
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                store(cSel, o0 + i, f0, 0);
            }
        }
        if (op == OP_ADD) {
            // act[o0 + i] += act[o1 + i], i < n0
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                aw(o0 + i, ar(o0 + i) + ar(o1 + i));
            }
        }
        if (op == OP_SWIGLU_FWD) {
            // m[o2] = silu(g[o0]) * u[o1], n0 elements
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                float g = ar(o0 + i);
                aw(o2 + i, g * sigmoid(g) * ar(o1 + i));
            }
        }
        if (op == OP_SWIGLU_BWD) {
            // dm[o2] -> dg[o3] +=, du[o4] += ; g[o0], u[o1]
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                float g = ar(o0 + i);
                float sg = sigmoid(g);
                float dm = ar(o2 + i);
                aw(o4 + i, ar(o4 + i) + dm * g * sg);
                aw(o3 + i, ar(o3 + i) + dm * ar(o1 + i) * sg * (1f + g * (1f - sg)));
            }
        }
        if (op == OP_RMSNORM_FWD) {
            // rows n0 of width n1: y[o1] = x[o0] * rstd * w[o3]; rstd[o2]; eps f0
            if (gx < n0) {
                int row = gx * n1;
                float ss = 0f;
                for (int i = 0; i < n1; i++) {
                    float x = ar(o0 + row + i);
                    ss += x * x;
                }
                float rs = 1f / sqrt(ss / n1 + f0);
                aw(o2 + gx, rs);
                for (int i = 0; i < n1; i++) {
                    aw(o1 + row + i, ar(o0 + row + i) * rs * pw(o3 + i));
                }
            }
        }
        if (op == OP_RMSNORM_BWD_DX) {
            // dx[o4] += rs*w*dy - x*rs^3/d*sum(dy*w*x); dy[o1], x[o0], rstd[o2], w[o3]
            if (gx < n0) {
                int row = gx * n1;
                float rs = ar(o2 + gx);
                float dot = 0f;
                for (int i = 0; i < n1; i++) {
                    dot += ar(o1 + row + i) * pw(o3 + i) * ar(o0 + row + i);
                }
                float c = dot * rs * rs * rs / n1;
                for (int i = 0; i < n1; i++) {
                    aw(o4 + row + i, ar(o4 + row + i) + rs * pw(o3 + i) * ar(o1 + row + i) - c * ar(o0 + row + i));
                }
            }
        }
        if (op == OP_RMSNORM_BWD_DW) {
            // one work item per column: gw[o3 + i] += sum_rows dy*x*rstd, rows in order
            if (gx < n1) {
                float s = 0f;
                for (int r = 0; r < n0; r++) {
                    s += ar(o1 + r * n1 + gx) * ar(o0 + r * n1 + gx) * ar(o2 + r);
                }
                gradAdd(o3 + gx, s);
            }
        }
        if (op == OP_ROPE) {
            // x[o0] (rows of n1 heads x n2 dims) rotated in place, gn = rows*n1*n2/2 pairs; seqLen n0;
            // f0 = +1 forward, -1 backward (the transpose); each work item takes chunk consecutive pairs.
            // ("half" would be an OpenCL type name.)
            int pairs = n2 / 2;
            for (int e = gx * chunk; e < min(gn, gx * chunk + chunk); e++) {
                int i = e % pairs;
                int h = (e / pairs) % n1;
                int r = e / (pairs * n1);
                int t = (r % n0) * pairs + i;
                float c = ropeCos[t];
                float s = f0 * ropeSin[t];
                int base = o0 + r * n1 * n2 + h * n2;
                float a = ar(base + i);
                float b = ar(base + pairs + i);
                aw(base + i, a * c - b * s);
                aw(base + pairs + i, b * c + a * s);
            }
        }

        if (op == OP_EMBED_FWD) {
            // h[o1] (n0 rows, n1 wide) = w[o0 + tok[r] * n1]
            if (gx < n0 * n1) {
                int r = gx / n1;
                aw(o1 + gx, pw(o0 + tok[r] * n1 + gx % n1));
            }
        }
        if (op == OP_EMBED_BWD) {
            // one work item per column, rows in order: gw[o0 + tok[r] * n1 + i] += dh[o1 + r * n1 + i]
            if (gx < n1) {
                for (int r = 0; r < n0; r++) {
                    int gi = o0 + tok[r] * n1 + gx;
                    gradAdd(gi, ar(o1 + r * n1 + gx));
                }
            }
        }
        if (op == OP_ATTN_FWD) {
            // Memory-efficient causal attention: per (sequence b, head h, query s) one pass over the keys
            // with an online softmax; only the row's log-sum-exp is kept for the backward pass, never the
            // S x S probabilities. n0 batch, n1 seqLen, n2 heads, n3 head size, f0 scale;
            // q o0, k o1, v o2, lse o3 (B,H,S), out o4
            if (gx < n0 * n2 * n1) {
                int s = gx % n1;
                int p = gx / n1;
                int b = p / n2;
                int h = p % n2;
                int d = n2 * n3;
                int qi = (b * n1 + s) * d + h * n3;
                for (int i = 0; i < n3; i++) {
                    aw(o4 + qi + i, 0f);
                }
                float mx = -3.0e38f;
                float l = 0f;
                for (int j = 0; j <= s; j++) {
                    int kj = (b * n1 + j) * d + h * n3;
                    float dot = 0f;
                    for (int i = 0; i < n3; i++) {
                        dot += ar(o0 + qi + i) * ar(o1 + kj + i);
                    }
                    float sc = dot * f0;
                    float mNew = max(mx, sc);
                    float corr = exp(mx - mNew);
                    float e = exp(sc - mNew);
                    l = l * corr + e;
                    for (int i = 0; i < n3; i++) {
                        aw(o4 + qi + i, ar(o4 + qi + i) * corr + e * ar(o2 + kj + i));
                    }
                    mx = mNew;
                }
                for (int i = 0; i < n3; i++) {
                    aw(o4 + qi + i, ar(o4 + qi + i) / l);
                }
                aw(o3 + p * n1 + s, mx + log(l));
            }
        }
        if (op == OP_ATTN_BWD_Q) {
            // per (b, h, s), probabilities recomputed from q, k and the row's lse: dS = P (dP - D) * scale with
            // dP = dout . v and D = dout . out; dq[o5] += dS k. lse o3, dout o4, out o6
            if (gx < n0 * n2 * n1) {
                int s = gx % n1;
                int p = gx / n1;
                int b = p / n2;
                int h = p % n2;
                int d = n2 * n3;
                int qi = (b * n1 + s) * d + h * n3;
                float lse = ar(o3 + p * n1 + s);
                float dd = 0f;
                for (int i = 0; i < n3; i++) {
                    dd += ar(o4 + qi + i) * ar(o6 + qi + i);
                }
                for (int j = 0; j <= s; j++) {
                    int kj = (b * n1 + j) * d + h * n3;
                    float dot = 0f;
                    float g = 0f;
                    for (int i = 0; i < n3; i++) {
                        dot += ar(o0 + qi + i) * ar(o1 + kj + i);
                        g += ar(o4 + qi + i) * ar(o2 + kj + i);
                    }
                    float pj = exp(dot * f0 - lse);
                    float ds = pj * (g - dd) * f0;
                    for (int i = 0; i < n3; i++) {
                        aw(o5 + qi + i, ar(o5 + qi + i) + ds * ar(o1 + kj + i));
                    }
                }
            }
        }
        if (op == OP_ATTN_BWD_KV) {
            // per (b, h, key j): dk[o7] += sum_{s>=j} dS[s,j] q[s]; dv[o8] += sum_{s>=j} P[s,j] dout[s], with P and
            // dS recomputed as in OP_ATTN_BWD_Q
            if (gx < n0 * n2 * n1) {
                int j = gx % n1;
                int p = gx / n1;
                int b = p / n2;
                int h = p % n2;
                int d = n2 * n3;
                int kj = (b * n1 + j) * d + h * n3;
                for (int s = j; s < n1; s++) {
                    int qi = (b * n1 + s) * d + h * n3;
                    float dot = 0f;
                    float g = 0f;
                    float dd = 0f;
                    for (int i = 0; i < n3; i++) {
                        dot += ar(o0 + qi + i) * ar(o1 + kj + i);
                        g += ar(o4 + qi + i) * ar(o2 + kj + i);
                        dd += ar(o4 + qi + i) * ar(o6 + qi + i);
                    }
                    float pj = exp(dot * f0 - ar(o3 + p * n1 + s));
                    float ds = pj * (g - dd) * f0;
                    for (int i = 0; i < n3; i++) {
                        aw(o7 + kj + i, ar(o7 + kj + i) + ds * ar(o0 + qi + i));
                        aw(o8 + kj + i, ar(o8 + kj + i) + pj * ar(o4 + qi + i));
                    }
                }
            }
        }
        if (op == OP_CE_FWD) {
            // rows n0 of a block starting at row n2, vocab n1: logits o0 (block, V) -> lse[o1 + row], ce[o2 + row]
            if (gx < n0) {
                int row = o0 + gx * n1;
                float mx = -3.0e38f;
                for (int j = 0; j < n1; j++) {
                    mx = max(mx, ar(row + j));
                }
                float sum = 0f;
                for (int j = 0; j < n1; j++) {
                    sum += exp(ar(row + j) - mx);
                }
                float l = mx + log(sum);
                int t = tgt[n2 + gx];
                aw(o1 + n2 + gx, l);
                float c = 0f;
                if (t >= 0) {
                    c = l - ar(row + t);
                }
                aw(o2 + n2 + gx, c);
            }
        }
        if (op == OP_CE_BWD) {
            // in place: logits -> dce[o3 + row] * (softmax - onehot); lse at o1
            if (gx < n0) {
                int row = o0 + gx * n1;
                int t = tgt[n2 + gx];
                float g = 0f;
                if (t >= 0) {
                    g = ar(o3 + n2 + gx);
                }
                float l = ar(o1 + n2 + gx);
                for (int j = 0; j < n1; j++) {
                    aw(row + j, g * exp(ar(row + j) - l));
                }
                if (t >= 0) {
                    aw(row + t, ar(row + t) - g);
                }
            }
        }
        if (op == OP_BIAS_ADD) {
            if (gx < n0) {
                aw(o0 + gx, ar(o0 + gx) + pw(o1));
            }
        }
        if (op == OP_SUM_TO_GRAD) {
            // one work item: gw[o1] += sum of act[o0 .. o0 + n0) in order
            if (gx == 0) {
                float s = 0f;
                for (int r = 0; r < n0; r++) {
                    s += ar(o0 + r);
                }
                gradAdd(o1, s);
            }
        }
        if (op == OP_COPY) {
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                aw(o0 + i, ar(o1 + i));
            }
        }
        if (op == OP_XCOPY) {
            // slot cSel [o0, o0 + n0) = slot aSel [o1, o1 + n0)
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                slotStore(cSel, o0 + i, slotLoad(aSel, o1 + i));
            }
        }
        if (op == OP_TRANSPOSE) {
            // act[o0 + c * n0 + r] = X[o1 + r * n2 + c] for r < n0, c < n1, X the operand aSel (parameters or act),
            // in 16 x 16 tiles (n3 tiles across c) so that reads and writes both use whole cache lines
            for (int tile = gx * chunk; tile < min(n3 * ((n0 + 15) / 16), gx * chunk + chunk); tile++) {
                int r0 = (tile / n3) * 16;
                int c0 = (tile % n3) * 16;
                int rEnd = min(n0, r0 + 16);
                int cEnd = min(n1, c0 + 16);
                for (int c = c0; c < cEnd; c++) {
                    for (int r = r0; r < rEnd; r++) {
                        aw(o0 + c * n0 + r, load(aSel, o1 + r * n2 + c));
                    }
                }
            }
        }
        if (op == OP_EXIT) {
            // per token r < n0 over T = n1 steps; (T,N) arrays: z o0, ce o1, p o2, dz o3, dce o4.
            // n2 = 1 Stage I, 2 Stage II; f0 = loss scale (1/tokens, or 1/(tokens*T)), f1 beta, f2 k, f3 gamma.
            // metrics[r] = this token's scaled loss. p and dz hold log p and dL/dlog p on the way.
            if (gx < n0) {
                int r = gx;
                int nn = n0;
                float loss = 0f;
                float logS = 0f;
                for (int t = 0; t < n1 - 1; t++) {
                    float zt = ar(o0 + t * nn + r);
                    aw(o2 + t * nn + r, logS - softplus(-zt));
                    logS = logS - softplus(zt);
                }
                aw(o2 + (n1 - 1) * nn + r, logS);
                if (tgt[r] < 0) {
                    for (int t = 0; t < n1; t++) {
                        aw(o2 + t * nn + r, 0f);
                        aw(o3 + t * nn + r, 0f);
                        aw(o4 + t * nn + r, 0f);
                    }
                }
                if (tgt[r] >= 0) {
                    for (int t = 0; t < n1; t++) {
                        float lp = ar(o2 + t * nn + r);
                        float pt = exp(lp);
                        float c = ar(o1 + t * nn + r);
                        aw(o2 + t * nn + r, pt);
                        if (n2 == 1) {
                            loss += pt * c + f1 * pt * lp;
                            aw(o3 + t * nn + r, (c + f1 * (lp + 1f)) * pt);
                            aw(o4 + t * nn + r, pt * f0);
                        }
                    }
                    if (n2 == 1) {
                        float tail = ar(o3 + (n1 - 1) * nn + r);
                        aw(o3 + (n1 - 1) * nn + r, 0f);
                        for (int j = n1 - 2; j >= 0; j--) {
                            float lam = sigmoid(ar(o0 + j * nn + r));
                            float gj = ar(o3 + j * nn + r);
                            aw(o3 + j * nn + r, (gj * (1f - lam) - lam * tail) * f0);
                            tail += gj;
                        }
                    }
                    if (n2 == 2) {
                        aw(o3 + r, 0f);
                        for (int t = 1; t < n1; t++) {
                            float zt = ar(o0 + t * nn + r);
                            float imp = max(0f, ar(o1 + (t - 1) * nn + r) - ar(o1 + t * nn + r));
                            float wt = sigmoid(f2 * (imp - f3));
                            loss += wt * softplus(zt) + (1f - wt) * softplus(-zt);
                            aw(o3 + t * nn + r, (sigmoid(zt) - 1f + wt) * f0);
                        }
                    }
                }
                metrics[r] = loss * f0;
            }
        }
        if (op == OP_STEP_MEANS) {
            // per step t < n1: metrics[n0 + t] = sum of ce[o1 + t*N + r], metrics[n0 + n1 + t] = sum of p, valid rows
            if (gx < n1) {
                float sc = 0f;
                float sp = 0f;
                for (int r = 0; r < n0; r++) {
                    if (tgt[r] >= 0) {
                        sc += ar(o1 + gx * n0 + r);
                        sp += ar(o2 + gx * n0 + r);
                    }
                }
                metrics[n0 + gx] = sc;
                metrics[n0 + n1 + gx] = sp;
            }
        }
        if (op == OP_SUMSQ) {
            // n0 partial sums over segment pseg's gradient [0, n1) in chunks of n2 -> metrics[o0 + g]
            if (gx < n0) {
                float s = 0f;
                int end = min(n1, (gx + 1) * n2);
                for (int i = gx * n2; i < end; i++) {
                    float g = gr(i);
                    s += g * g;
                }
                metrics[o0 + gx] = s;
            }
        }
        if (op == OP_SCALE) {
            // n1 0: times f0; 1: divided by f0
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                float g = gr(i);
                gset(i, n1 == 1 ? g / f0 : g * f0);
            }
        }
        if (op == OP_RANGE_OUT) {
            // xg[e] = f0 * (n1 == 0 ? parameters : gradients)[o0 + e] of segment pseg, e < n0
            for (int e = gx * chunk; e < min(n0, gx * chunk + chunk); e++) {
                int i = o0 + e;
                float x = n1 == 0 ? pw(i) : gr(i);
                xg[e] = f0 * x;
            }
        }
        if (op == OP_RANGE_IN) {
            // (n1 == 0 ? parameters : gradients)[o0 + e] of segment pseg = xg[e], e < n0
            for (int e = gx * chunk; e < min(n0, gx * chunk + chunk); e++) {
                int i = o0 + e;
                if (n1 == 0) {
                    pset(i, xg[e]);
                }
                if (n1 == 1) {
                    gset(i, xg[e]);
                }
            }
        }
        if (op == OP_ADAMW) {
            // one tensor [o0, o0 + n0), its moments from o1: f0 decay keep factor, f1 beta1, f2 beta2, f3 lr / bc1,
            // f4 sqrt(bc2), f5 eps
            for (int e = gx * chunk; e < min(n0, gx * chunk + chunk); e++) {
                int i = o0 + e;
                int j = o1 + e;
                float g = gr(i);
                float m = f1 * m1r(j) + (1f - f1) * g;
                float v = f2 * m2r(j) + (1f - f2) * g * g;
                m1w(j, m);
                m2w(j, v);
                pset(i, pw(i) * f0 - f3 * m / (sqrt(v) / f4 + f5));
            }
        }

        // ---- decoding one token over a KV cache (OpenClDecodeOps) ----
        if (op == OP_ROPE_AT) {
            // one row x[o0] of n1 heads x n2 dims at position n0, rotated forward in place; gx < n1 * n2 / 2
            int pairs = n2 / 2;
            if (gx < n1 * pairs) {
                int i = gx % pairs;
                int h = gx / pairs;
                int t = n0 * pairs + i;
                float c = ropeCos[t];
                float s = ropeSin[t];
                int base = o0 + h * n2;
                float a = ar(base + i);
                float b = ar(base + pairs + i);
                aw(base + i, a * c - b * s);
                aw(base + pairs + i, b * c + a * s);
            }
        }
        if (op == OP_ATTN_CACHED) {
            // one query q[o0] (n2 heads x n3) over rows [0, n0) of the cached keys o1 / values o2 (rows of n2*n3)
            // and then its own key o3 / value o4; out o5; scale f0. One work item per head: the scaled scores once
            // into the scratch o6 (n2 x (n0 + 1)), then max, sum and weighted values over them, in the order of
            // RowOps.attendCached.
            if (gx < n2) {
                int d = n2 * n3;
                int hq = gx * n3;
                int sb = o6 + gx * (n0 + 1);
                float mx = -3.0e38f;
                for (int j = 0; j <= n0; j++) {
                    int kb = o1 + j * d + hq;
                    if (j == n0) {
                        kb = o3 + hq;
                    }
                    float dot = 0f;
                    for (int i = 0; i < n3; i++) {
                        dot += ar(o0 + hq + i) * ar(kb + i);
                    }
                    aw(sb + j, dot * f0);
                    mx = max(mx, ar(sb + j));
                }
                float sum = 0f;
                for (int j = 0; j <= n0; j++) {
                    sum += exp(ar(sb + j) - mx);
                }
                float inv = 1f / sum;
                for (int i = 0; i < n3; i++) {
                    aw(o5 + hq + i, 0f);
                }
                for (int j = 0; j <= n0; j++) {
                    int vb = o2 + j * d + hq;
                    if (j == n0) {
                        vb = o4 + hq;
                    }
                    float pj = exp(ar(sb + j) - mx) * inv;
                    for (int i = 0; i < n3; i++) {
                        aw(o5 + hq + i, ar(o5 + hq + i) + pj * ar(vb + i));
                    }
                }
            }
        }
        if (op == OP_MEAN) {
            // act[o0 + i] = mean over j < n1 of act[o1 + j * n2 + i], i < n0
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                float s = 0f;
                for (int j = 0; j < n1; j++) {
                    s += ar(o1 + j * n2 + i);
                }
                aw(o0 + i, s / n1);
            }
        }
        if (op == OP_TO_METRICS) {
            // metrics[o0 + i] = act[o1 + i], i < n0
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                metrics[o0 + i] = ar(o1 + i);
            }
        }
        if (op == OP_RMSNORM_ADD) {
            // one row of n1: y[o1] = x[o0] * rstd * w[o3] + r[o4] (w in segment pseg); rstd[o2]; eps f0
            if (gx == 0) {
                float ss = 0f;
                for (int i = 0; i < n1; i++) {
                    float x = ar(o0 + i);
                    ss += x * x;
                }
                float rs = 1f / sqrt(ss / n1 + f0);
                aw(o2, rs);
                for (int i = 0; i < n1; i++) {
                    aw(o1 + i, ar(o0 + i) * rs * pw(o3 + i) + ar(o4 + i));
                }
            }
        }
        if (op == OP_GEMV) {
            // y[o0 + j] = sum_k x[o1 + k] w[o2 + j * n1 + k], j < n0 (one row of a linear layer), w in segment pseg
            if (gx < n0) {
                float s = 0f;
                int wr = o2 + gx * n1;
                for (int q = 0; q < n1; q++) {
                    s += ar(o1 + q) * pw(wr + q);
                }
                aw(o0 + gx, s);
            }
        }

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
        if (op == OP_GEMM) {
            int r0 = rowBase + ly;
            int cc = colBase + lx;
            storeRow(r0 + 0, cc, c00, c01, c02, c03, c04, c05, c06, c07);
            storeRow(r0 + 32, cc, c10, c11, c12, c13, c14, c15, c16, c17);
        }

        // the phases of OP_PHASES (one work-group; the hand-written op reads the phase as gy), a barrier on local and
        // global memory after each; phases == 0 for every other op, so this loop and its barriers are skipped uniformly
        for (int p = 0; p < phases; p++) {
            handPhase(gx, p, lx, ly);
            localGlobalBarrier();
        }
    }
}
