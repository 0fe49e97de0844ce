package io.ouro.worker.opencl;

import com.aparapi.Kernel;

/**
 * Every device op of the training step in one Aparapi kernel, so that all ops share one set of
 * explicit device buffers (Aparapi keeps device buffers per Kernel instance). {@link #op} selects the
 * op; the int fields below are its arguments, set by {@link OpenClOps} before each launch.
 *
 * <p>Buffers: {@code w} parameters, {@code gw} gradients, {@code act} the activation arena (every
 * activation is a slice at an offset). A "selector" picks one of them: 0 = w, 1 = gw, 2 = act.
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
            OP_SCALE = 21, OP_ADAMW = 22, OP_SUM_TO_GRAD = 23, OP_COPY = 24, OP_GEMM_DOT = 25,
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

    float[] w = new float[1];
    float[] gw = new float[1];
    /**
     * The second parameter segment (parameters, gradients, moments) of a model past one Java array: tensors never
     * straddle segments, and {@link #pseg} says which segment an op's parameter tensor is in.
     */
    float[] w2 = new float[1];
    float[] gw2 = new float[1];
    float[] mom1b = new float[1];
    float[] mom2b = new float[1];
    float[] act = new float[1];
    float[] ropeCos = new float[1];
    float[] ropeSin = new float[1];
    /** Adam's first and second moments, laid out like w. */
    float[] mom1 = new float[1];
    float[] mom2 = new float[1];
    /** Small outputs that go back to the host each step: per-token losses, per-step sums, partial norms. */
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
    /** Parameter segment of the op's tensor (norm weights, the gate bias, AdamW, gradient norms): 0 or 1. */
    int pseg;
    float f0, f1, f2, f3, f4, f5;

    // selectors: 0 w, 1 gw, 2 act, 3 w2, 4 gw2
    float load(int sel, int idx) {
        return sel == 0 ? w[idx] : (sel == 1 ? gw[idx] : (sel == 2 ? act[idx] : (sel == 3 ? w2[idx] : gw2[idx])));
    }

    float pw(int idx) {
        return pseg == 0 ? w[idx] : w2[idx];
    }

    void gradAdd(int idx, float v) {
        if (pseg == 0) {
            gw[idx] = gw[idx] + v;
        }
        if (pseg == 1) {
            gw2[idx] = gw2[idx] + v;
        }
    }

    void store(int sel, int idx, float v, int add) {
        // (no call to load(): Aparapi can emit a helper after the helper that calls it)
        if (sel == 0) {
            w[idx] = add == 1 ? w[idx] + v : v;
        }
        if (sel == 1) {
            gw[idx] = add == 1 ? gw[idx] + v : v;
        }
        if (sel == 2) {
            act[idx] = add == 1 ? act[idx] + v : v;
        }
        if (sel == 3) {
            w2[idx] = add == 1 ? w2[idx] + v : v;
        }
        if (sel == 4) {
            gw2[idx] = add == 1 ? gw2[idx] + v : v;
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
            x = act[idx];
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
            act[idx] = x;
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
                act[o0 + i] = act[o0 + i] + act[o1 + i];
            }
        }
        if (op == OP_SWIGLU_FWD) {
            // m[o2] = silu(g[o0]) * u[o1], n0 elements
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                float g = act[o0 + i];
                act[o2 + i] = g * sigmoid(g) * act[o1 + i];
            }
        }
        if (op == OP_SWIGLU_BWD) {
            // dm[o2] -> dg[o3] +=, du[o4] += ; g[o0], u[o1]
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                float g = act[o0 + i];
                float sg = sigmoid(g);
                float dm = act[o2 + i];
                act[o4 + i] = act[o4 + i] + dm * g * sg;
                act[o3 + i] = act[o3 + i] + dm * act[o1 + i] * sg * (1f + g * (1f - sg));
            }
        }
        if (op == OP_RMSNORM_FWD) {
            // rows n0 of width n1: y[o1] = x[o0] * rstd * w[o3]; rstd[o2]; eps f0
            if (gx < n0) {
                int row = gx * n1;
                float ss = 0f;
                for (int i = 0; i < n1; i++) {
                    float x = act[o0 + row + i];
                    ss += x * x;
                }
                float rs = 1f / sqrt(ss / n1 + f0);
                act[o2 + gx] = rs;
                for (int i = 0; i < n1; i++) {
                    act[o1 + row + i] = act[o0 + row + i] * rs * pw(o3 + i);
                }
            }
        }
        if (op == OP_RMSNORM_BWD_DX) {
            // dx[o4] += rs*w*dy - x*rs^3/d*sum(dy*w*x); dy[o1], x[o0], rstd[o2], w[o3]
            if (gx < n0) {
                int row = gx * n1;
                float rs = act[o2 + gx];
                float dot = 0f;
                for (int i = 0; i < n1; i++) {
                    dot += act[o1 + row + i] * pw(o3 + i) * act[o0 + row + i];
                }
                float c = dot * rs * rs * rs / n1;
                for (int i = 0; i < n1; i++) {
                    act[o4 + row + i] = act[o4 + row + i] + rs * pw(o3 + i) * act[o1 + row + i] - c * act[o0 + row + i];
                }
            }
        }
        if (op == OP_RMSNORM_BWD_DW) {
            // one work item per column: gw[o3 + i] += sum_rows dy*x*rstd, rows in order
            if (gx < n1) {
                float s = 0f;
                for (int r = 0; r < n0; r++) {
                    s += act[o1 + r * n1 + gx] * act[o0 + r * n1 + gx] * act[o2 + r];
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
                float a = act[base + i];
                float b = act[base + pairs + i];
                act[base + i] = a * c - b * s;
                act[base + pairs + i] = b * c + a * s;
            }
        }

        if (op == OP_EMBED_FWD) {
            // h[o1] (n0 rows, n1 wide) = w[o0 + tok[r] * n1]
            if (gx < n0 * n1) {
                int r = gx / n1;
                act[o1 + gx] = w[o0 + tok[r] * n1 + gx % n1];
            }
        }
        if (op == OP_EMBED_BWD) {
            // one work item per column, rows in order: gw[o0 + tok[r] * n1 + i] += dh[o1 + r * n1 + i]
            if (gx < n1) {
                for (int r = 0; r < n0; r++) {
                    int gi = o0 + tok[r] * n1 + gx;
                    gw[gi] = gw[gi] + act[o1 + r * n1 + gx];
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
                    act[o4 + qi + i] = 0f;
                }
                float mx = -3.0e38f;
                float l = 0f;
                for (int j = 0; j <= s; j++) {
                    int kj = (b * n1 + j) * d + h * n3;
                    float dot = 0f;
                    for (int i = 0; i < n3; i++) {
                        dot += act[o0 + qi + i] * act[o1 + kj + i];
                    }
                    float sc = dot * f0;
                    float mNew = max(mx, sc);
                    float corr = exp(mx - mNew);
                    float e = exp(sc - mNew);
                    l = l * corr + e;
                    for (int i = 0; i < n3; i++) {
                        act[o4 + qi + i] = act[o4 + qi + i] * corr + e * act[o2 + kj + i];
                    }
                    mx = mNew;
                }
                for (int i = 0; i < n3; i++) {
                    act[o4 + qi + i] = act[o4 + qi + i] / l;
                }
                act[o3 + p * n1 + s] = mx + log(l);
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
                float lse = act[o3 + p * n1 + s];
                float dd = 0f;
                for (int i = 0; i < n3; i++) {
                    dd += act[o4 + qi + i] * act[o6 + qi + i];
                }
                for (int j = 0; j <= s; j++) {
                    int kj = (b * n1 + j) * d + h * n3;
                    float dot = 0f;
                    float g = 0f;
                    for (int i = 0; i < n3; i++) {
                        dot += act[o0 + qi + i] * act[o1 + kj + i];
                        g += act[o4 + qi + i] * act[o2 + kj + i];
                    }
                    float pj = exp(dot * f0 - lse);
                    float ds = pj * (g - dd) * f0;
                    for (int i = 0; i < n3; i++) {
                        act[o5 + qi + i] = act[o5 + qi + i] + ds * act[o1 + kj + i];
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
                        dot += act[o0 + qi + i] * act[o1 + kj + i];
                        g += act[o4 + qi + i] * act[o2 + kj + i];
                        dd += act[o4 + qi + i] * act[o6 + qi + i];
                    }
                    float pj = exp(dot * f0 - act[o3 + p * n1 + s]);
                    float ds = pj * (g - dd) * f0;
                    for (int i = 0; i < n3; i++) {
                        act[o7 + kj + i] = act[o7 + kj + i] + ds * act[o0 + qi + i];
                        act[o8 + kj + i] = act[o8 + kj + i] + pj * act[o4 + qi + i];
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
                    mx = max(mx, act[row + j]);
                }
                float sum = 0f;
                for (int j = 0; j < n1; j++) {
                    sum += exp(act[row + j] - mx);
                }
                float l = mx + log(sum);
                int t = tgt[n2 + gx];
                act[o1 + n2 + gx] = l;
                float c = 0f;
                if (t >= 0) {
                    c = l - act[row + t];
                }
                act[o2 + n2 + gx] = c;
            }
        }
        if (op == OP_CE_BWD) {
            // in place: logits -> dce[o3 + row] * (softmax - onehot); lse at o1
            if (gx < n0) {
                int row = o0 + gx * n1;
                int t = tgt[n2 + gx];
                float g = 0f;
                if (t >= 0) {
                    g = act[o3 + n2 + gx];
                }
                float l = act[o1 + n2 + gx];
                for (int j = 0; j < n1; j++) {
                    act[row + j] = g * exp(act[row + j] - l);
                }
                if (t >= 0) {
                    act[row + t] = act[row + t] - g;
                }
            }
        }
        if (op == OP_BIAS_ADD) {
            if (gx < n0) {
                act[o0 + gx] = act[o0 + gx] + pw(o1);
            }
        }
        if (op == OP_SUM_TO_GRAD) {
            // one work item: gw[o1] += sum of act[o0 .. o0 + n0) in order
            if (gx == 0) {
                float s = 0f;
                for (int r = 0; r < n0; r++) {
                    s += act[o0 + r];
                }
                gradAdd(o1, s);
            }
        }
        if (op == OP_GEMM_DOT) {
            // GEMM for CPU devices when A is in act and both A and B are k-contiguous (aCs = bCs = 1): each item
            // computes a 4 x 4 block of C as 16 dot products over k, with no local memory and no barrier, so
            // the compiler vectorizes the k loop (a reduction: pocl needs -cl-unsafe-math-optimizations).
            // Rows and columns past the edge are clamped for loading and skipped when storing. The loop is
            // written once per B buffer: a buffer chosen per load (load()) keeps pocl from vectorizing it.
            int i0 = gy * 4;
            int j0 = gx * 4;
            if (i0 < gm && j0 < gn) {
                int pa0 = aOff + min(i0, gm - 1) * aRs;
                int pa1 = aOff + min(i0 + 1, gm - 1) * aRs;
                int pa2 = aOff + min(i0 + 2, gm - 1) * aRs;
                int pa3 = aOff + min(i0 + 3, gm - 1) * aRs;
                int pb0 = bOff + min(j0, gn - 1) * bRs;
                int pb1 = bOff + min(j0 + 1, gn - 1) * bRs;
                int pb2 = bOff + min(j0 + 2, gn - 1) * bRs;
                int pb3 = bOff + min(j0 + 3, gn - 1) * bRs;
                float s00 = 0f, s01 = 0f, s02 = 0f, s03 = 0f, s10 = 0f, s11 = 0f, s12 = 0f, s13 = 0f;
                float s20 = 0f, s21 = 0f, s22 = 0f, s23 = 0f, s30 = 0f, s31 = 0f, s32 = 0f, s33 = 0f;
                if (bSel == 0) {
                    for (int q = 0; q < gk; q++) {
                        float x0 = act[pa0 + q];
                        float x1 = act[pa1 + q];
                        float x2 = act[pa2 + q];
                        float x3 = act[pa3 + q];
                        float y0 = w[pb0 + q];
                        float y1 = w[pb1 + q];
                        float y2 = w[pb2 + q];
                        float y3 = w[pb3 + q];
                        s00 += x0 * y0;
                        s01 += x0 * y1;
                        s02 += x0 * y2;
                        s03 += x0 * y3;
                        s10 += x1 * y0;
                        s11 += x1 * y1;
                        s12 += x1 * y2;
                        s13 += x1 * y3;
                        s20 += x2 * y0;
                        s21 += x2 * y1;
                        s22 += x2 * y2;
                        s23 += x2 * y3;
                        s30 += x3 * y0;
                        s31 += x3 * y1;
                        s32 += x3 * y2;
                        s33 += x3 * y3;
                    }
                }
                if (bSel == 3) {
                    for (int q = 0; q < gk; q++) {
                        float x0 = act[pa0 + q];
                        float x1 = act[pa1 + q];
                        float x2 = act[pa2 + q];
                        float x3 = act[pa3 + q];
                        float y0 = w2[pb0 + q];
                        float y1 = w2[pb1 + q];
                        float y2 = w2[pb2 + q];
                        float y3 = w2[pb3 + q];
                        s00 += x0 * y0;
                        s01 += x0 * y1;
                        s02 += x0 * y2;
                        s03 += x0 * y3;
                        s10 += x1 * y0;
                        s11 += x1 * y1;
                        s12 += x1 * y2;
                        s13 += x1 * y3;
                        s20 += x2 * y0;
                        s21 += x2 * y1;
                        s22 += x2 * y2;
                        s23 += x2 * y3;
                        s30 += x3 * y0;
                        s31 += x3 * y1;
                        s32 += x3 * y2;
                        s33 += x3 * y3;
                    }
                }
                if (bSel == 2) {
                    for (int q = 0; q < gk; q++) {
                        float x0 = act[pa0 + q];
                        float x1 = act[pa1 + q];
                        float x2 = act[pa2 + q];
                        float x3 = act[pa3 + q];
                        float y0 = act[pb0 + q];
                        float y1 = act[pb1 + q];
                        float y2 = act[pb2 + q];
                        float y3 = act[pb3 + q];
                        s00 += x0 * y0;
                        s01 += x0 * y1;
                        s02 += x0 * y2;
                        s03 += x0 * y3;
                        s10 += x1 * y0;
                        s11 += x1 * y1;
                        s12 += x1 * y2;
                        s13 += x1 * y3;
                        s20 += x2 * y0;
                        s21 += x2 * y1;
                        s22 += x2 * y2;
                        s23 += x2 * y3;
                        s30 += x3 * y0;
                        s31 += x3 * y1;
                        s32 += x3 * y2;
                        s33 += x3 * y3;
                    }
                }
                storeRow4(i0, j0, s00, s01, s02, s03);
                storeRow4(i0 + 1, j0, s10, s11, s12, s13);
                storeRow4(i0 + 2, j0, s20, s21, s22, s23);
                storeRow4(i0 + 3, j0, s30, s31, s32, s33);
            }
        }
        if (op == OP_COPY) {
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                act[o0 + i] = act[o1 + i];
            }
        }
        if (op == OP_XCOPY) {
            // slot cSel [o0, o0 + n0) = slot aSel [o1, o1 + n0)
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                slotStore(cSel, o0 + i, slotLoad(aSel, o1 + i));
            }
        }
        if (op == OP_TRANSPOSE) {
            // act[o0 + c * n0 + r] = X[o1 + r * n2 + c] for r < n0, c < n1, X in buffer aSel (PARAMS or ACT),
            // in 16 x 16 tiles (n3 tiles across c) so that reads and writes both use whole cache lines
            for (int tile = gx * chunk; tile < min(n3 * ((n0 + 15) / 16), gx * chunk + chunk); tile++) {
                int r0 = (tile / n3) * 16;
                int c0 = (tile % n3) * 16;
                int rEnd = min(n0, r0 + 16);
                int cEnd = min(n1, c0 + 16);
                if (aSel == 0) {
                    for (int c = c0; c < cEnd; c++) {
                        for (int r = r0; r < rEnd; r++) {
                            act[o0 + c * n0 + r] = w[o1 + r * n2 + c];
                        }
                    }
                }
                if (aSel == 2) {
                    for (int c = c0; c < cEnd; c++) {
                        for (int r = r0; r < rEnd; r++) {
                            act[o0 + c * n0 + r] = act[o1 + r * n2 + c];
                        }
                    }
                }
                if (aSel == 3) {
                    for (int c = c0; c < cEnd; c++) {
                        for (int r = r0; r < rEnd; r++) {
                            act[o0 + c * n0 + r] = w2[o1 + r * n2 + c];
                        }
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
                    float zt = act[o0 + t * nn + r];
                    act[o2 + t * nn + r] = logS - softplus(-zt);
                    logS = logS - softplus(zt);
                }
                act[o2 + (n1 - 1) * nn + r] = logS;
                if (tgt[r] < 0) {
                    for (int t = 0; t < n1; t++) {
                        act[o2 + t * nn + r] = 0f;
                        act[o3 + t * nn + r] = 0f;
                        act[o4 + t * nn + r] = 0f;
                    }
                }
                if (tgt[r] >= 0) {
                    for (int t = 0; t < n1; t++) {
                        float lp = act[o2 + t * nn + r];
                        float pt = exp(lp);
                        float c = act[o1 + t * nn + r];
                        act[o2 + t * nn + r] = pt;
                        if (n2 == 1) {
                            loss += pt * c + f1 * pt * lp;
                            act[o3 + t * nn + r] = (c + f1 * (lp + 1f)) * pt;
                            act[o4 + t * nn + r] = pt * f0;
                        }
                    }
                    if (n2 == 1) {
                        float tail = act[o3 + (n1 - 1) * nn + r];
                        act[o3 + (n1 - 1) * nn + r] = 0f;
                        for (int j = n1 - 2; j >= 0; j--) {
                            float lam = sigmoid(act[o0 + j * nn + r]);
                            float gj = act[o3 + j * nn + r];
                            act[o3 + j * nn + r] = (gj * (1f - lam) - lam * tail) * f0;
                            tail += gj;
                        }
                    }
                    if (n2 == 2) {
                        act[o3 + r] = 0f;
                        for (int t = 1; t < n1; t++) {
                            float zt = act[o0 + t * nn + r];
                            float imp = max(0f, act[o1 + (t - 1) * nn + r] - act[o1 + t * nn + r]);
                            float wt = sigmoid(f2 * (imp - f3));
                            loss += wt * softplus(zt) + (1f - wt) * softplus(-zt);
                            act[o3 + t * nn + r] = (sigmoid(zt) - 1f + wt) * f0;
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
                        sc += act[o1 + gx * n0 + r];
                        sp += act[o2 + gx * n0 + r];
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
                    float g = pseg == 0 ? gw[i] : gw2[i];
                    s += g * g;
                }
                metrics[o0 + gx] = s;
            }
        }
        if (op == OP_SCALE) {
            // n1 0: times f0; 1: divided by f0
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                if (pseg == 0) {
                    gw[i] = n1 == 1 ? gw[i] / f0 : gw[i] * f0;
                }
                if (pseg == 1) {
                    gw2[i] = n1 == 1 ? gw2[i] / f0 : gw2[i] * f0;
                }
            }
        }
        if (op == OP_RANGE_OUT) {
            // xg[e] = f0 * (n1 == 0 ? parameters : gradients)[o0 + e] of segment pseg, e < n0
            for (int e = gx * chunk; e < min(n0, gx * chunk + chunk); e++) {
                int i = o0 + e;
                float x = 0f;
                if (pseg == 0) {
                    x = n1 == 0 ? w[i] : gw[i];
                }
                if (pseg == 1) {
                    x = n1 == 0 ? w2[i] : gw2[i];
                }
                xg[e] = f0 * x;
            }
        }
        if (op == OP_RANGE_IN) {
            // (n1 == 0 ? parameters : gradients)[o0 + e] of segment pseg = xg[e], e < n0
            for (int e = gx * chunk; e < min(n0, gx * chunk + chunk); e++) {
                int i = o0 + e;
                if (pseg == 0 && n1 == 0) {
                    w[i] = xg[e];
                }
                if (pseg == 0 && n1 == 1) {
                    gw[i] = xg[e];
                }
                if (pseg == 1 && n1 == 0) {
                    w2[i] = xg[e];
                }
                if (pseg == 1 && n1 == 1) {
                    gw2[i] = xg[e];
                }
            }
        }
        if (op == OP_ADAMW) {
            // one tensor [o0, o0 + n0), its moments from o1: f0 decay keep factor, f1 beta1, f2 beta2, f3 lr / bc1,
            // f4 sqrt(bc2), f5 eps
            // (written once per segment, like the GEMM's B operand)
            if (pseg == 0) {
                for (int e = gx * chunk; e < min(n0, gx * chunk + chunk); e++) {
                    int i = o0 + e;
                    int j = o1 + e;
                    float g = gw[i];
                    float m = f1 * mom1[j] + (1f - f1) * g;
                    float v = f2 * mom2[j] + (1f - f2) * g * g;
                    mom1[j] = m;
                    mom2[j] = v;
                    w[i] = w[i] * f0 - f3 * m / (sqrt(v) / f4 + f5);
                }
            }
            if (pseg == 1) {
                for (int e = gx * chunk; e < min(n0, gx * chunk + chunk); e++) {
                    int i = o0 + e;
                    int j = o1 + e;
                    float g = gw2[i];
                    float m = f1 * mom1b[j] + (1f - f1) * g;
                    float v = f2 * mom2b[j] + (1f - f2) * g * g;
                    mom1b[j] = m;
                    mom2b[j] = v;
                    w2[i] = w2[i] * f0 - f3 * m / (sqrt(v) / f4 + f5);
                }
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
                float a = act[base + i];
                float b = act[base + pairs + i];
                act[base + i] = a * c - b * s;
                act[base + pairs + i] = b * c + a * s;
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
                        dot += act[o0 + hq + i] * act[kb + i];
                    }
                    act[sb + j] = dot * f0;
                    mx = max(mx, act[sb + j]);
                }
                float sum = 0f;
                for (int j = 0; j <= n0; j++) {
                    sum += exp(act[sb + j] - mx);
                }
                float inv = 1f / sum;
                for (int i = 0; i < n3; i++) {
                    act[o5 + hq + i] = 0f;
                }
                for (int j = 0; j <= n0; j++) {
                    int vb = o2 + j * d + hq;
                    if (j == n0) {
                        vb = o4 + hq;
                    }
                    float pj = exp(act[sb + j] - mx) * inv;
                    for (int i = 0; i < n3; i++) {
                        act[o5 + hq + i] = act[o5 + hq + i] + pj * act[vb + i];
                    }
                }
            }
        }
        if (op == OP_MEAN) {
            // act[o0 + i] = mean over j < n1 of act[o1 + j * n2 + i], i < n0
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                float s = 0f;
                for (int j = 0; j < n1; j++) {
                    s += act[o1 + j * n2 + i];
                }
                act[o0 + i] = s / n1;
            }
        }
        if (op == OP_TO_METRICS) {
            // metrics[o0 + i] = act[o1 + i], i < n0
            for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
                metrics[o0 + i] = act[o1 + i];
            }
        }
        if (op == OP_RMSNORM_ADD) {
            // one row of n1: y[o1] = x[o0] * rstd * w[o3] + r[o4] (w in segment pseg); rstd[o2]; eps f0
            if (gx == 0) {
                float ss = 0f;
                for (int i = 0; i < n1; i++) {
                    float x = act[o0 + i];
                    ss += x * x;
                }
                float rs = 1f / sqrt(ss / n1 + f0);
                act[o2] = rs;
                for (int i = 0; i < n1; i++) {
                    act[o1 + i] = act[o0 + i] * rs * pw(o3 + i) + act[o4 + i];
                }
            }
        }
        if (op == OP_GEMV) {
            // y[o0 + j] = sum_k x[o1 + k] w[o2 + j * n1 + k], j < n0 (one row of a linear layer), w in segment pseg
            if (gx < n0) {
                float s = 0f;
                int wr = o2 + gx * n1;
                if (pseg == 0) {
                    for (int q = 0; q < n1; q++) {
                        s += act[o1 + q] * w[wr + q];
                    }
                }
                if (pseg == 1) {
                    for (int q = 0; q < n1; q++) {
                        s += act[o1 + q] * w2[wr + q];
                    }
                }
                act[o0 + gx] = s;
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
