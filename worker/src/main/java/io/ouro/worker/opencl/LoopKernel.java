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

    static final int TILE = 16;

    static final int OP_GEMM = 1, OP_FILL = 2, OP_ADD = 3, OP_SWIGLU_FWD = 4, OP_SWIGLU_BWD = 5,
            OP_RMSNORM_FWD = 6, OP_RMSNORM_BWD_DX = 7, OP_RMSNORM_BWD_DW = 8, OP_ROPE = 9;

    float[] w = new float[1];
    float[] gw = new float[1];
    float[] act = new float[1];
    float[] ropeCos = new float[1];
    float[] ropeSin = new float[1];

    @Local
    float[] tileA = new float[TILE * TILE];
    @Local
    float[] tileB = new float[TILE * TILE];

    int op;
    /** Trip count of the barrier loop: K tiles for GEMM, 0 for every other op. */
    int tiles;
    // GEMM: C(i,j) (= or +=) sum_k A(i,k) B(j,k); element (r,c) of X is at xOff + r*xRs + c*xCs in buffer xSel
    int gm, gn, gk, accumulate;
    int aSel, aOff, aRs, aCs, bSel, bOff, bRs, bCs, cSel, cOff, cRs, cCs;
    // the other ops: sizes n0, n1, n2, offsets o0..o5 into act (or the buffer named by cSel/aSel), a float
    int n0, n1, n2, o0, o1, o2, o3, o4, o5;
    float f0;

    float load(int sel, int idx) {
        return sel == 0 ? w[idx] : (sel == 1 ? gw[idx] : act[idx]);
    }

    void store(int sel, int idx, float v, int add) {
        float base = 0f;
        if (add == 1) {
            base = load(sel, idx);
        }
        if (sel == 0) {
            w[idx] = base + v;
        } else if (sel == 1) {
            gw[idx] = base + v;
        } else {
            act[idx] = base + v;
        }
    }

    float sigmoid(float x) {
        return 1f / (1f + exp(-x));
    }

    @Override
    public void run() {
        int gx = getGlobalId(0);
        int gy = getGlobalId(1);
        int lx = getLocalId(0);
        int ly = getLocalId(1);

        if (op == OP_FILL) {
            // fill(buffer cSel, [o0, o0 + n0)) = f0
            if (gx < n0) {
                store(cSel, o0 + gx, f0, 0);
            }
        }
        if (op == OP_ADD) {
            // act[o0 + i] += act[o1 + i], i < n0
            if (gx < n0) {
                act[o0 + gx] = act[o0 + gx] + act[o1 + gx];
            }
        }
        if (op == OP_SWIGLU_FWD) {
            // m[o2] = silu(g[o0]) * u[o1], n0 elements
            if (gx < n0) {
                float g = act[o0 + gx];
                act[o2 + gx] = g * sigmoid(g) * act[o1 + gx];
            }
        }
        if (op == OP_SWIGLU_BWD) {
            // dm[o2] -> dg[o3] +=, du[o4] += ; g[o0], u[o1]
            if (gx < n0) {
                float g = act[o0 + gx];
                float sg = sigmoid(g);
                float dm = act[o2 + gx];
                act[o4 + gx] = act[o4 + gx] + dm * g * sg;
                act[o3 + gx] = act[o3 + gx] + dm * act[o1 + gx] * sg * (1f + g * (1f - sg));
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
                    act[o1 + row + i] = act[o0 + row + i] * rs * w[o3 + i];
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
                    dot += act[o1 + row + i] * w[o3 + i] * act[o0 + row + i];
                }
                float c = dot * rs * rs * rs / n1;
                for (int i = 0; i < n1; i++) {
                    act[o4 + row + i] = act[o4 + row + i] + rs * w[o3 + i] * act[o1 + row + i] - c * act[o0 + row + i];
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
                gw[o3 + gx] = gw[o3 + gx] + s;
            }
        }
        if (op == OP_ROPE) {
            // x[o0] (rows of n1 heads x n2 dims) rotated in place, gn = rows*n1*n2/2 pairs; seqLen n0;
            // f0 = +1 forward, -1 backward (the transpose). ("half" would be an OpenCL type name.)
            int pairs = n2 / 2;
            if (gx < gn) {
                int i = gx % pairs;
                int h = (gx / pairs) % n1;
                int r = gx / (pairs * n1);
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

        // tiled GEMM; for every other op tiles == 0 and this loop and its barriers are skipped uniformly
        float acc = 0f;
        int rowBase = gy - ly;
        int colBase = gx - lx;
        for (int t = 0; t < tiles; t++) {
            int k = t * TILE + lx;
            int ra = rowBase + ly;
            int rb = colBase + ly;
            float va = 0f;
            float vb = 0f;
            if (k < gk) {
                if (ra < gm) {
                    va = load(aSel, aOff + ra * aRs + k * aCs);
                }
                if (rb < gn) {
                    vb = load(bSel, bOff + rb * bRs + k * bCs);
                }
            }
            tileA[ly * TILE + lx] = va;
            tileB[ly * TILE + lx] = vb;
            localBarrier();
            for (int q = 0; q < TILE; q++) {
                acc += tileA[ly * TILE + q] * tileB[lx * TILE + q];
            }
            localBarrier();
        }
        if (op == OP_GEMM) {
            if (gy < gm) {
                if (gx < gn) {
                    store(cSel, cOff + gy * cRs + gx * cCs, acc, accumulate);
                }
            }
        }
    }
}
