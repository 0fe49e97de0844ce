/*
 * Hand-written OpenCL C ops of decoding (OpenClDecodeOps), spliced into LoopKernel's program after gemm.cl.
 *
 * OURO_GEMV: one row of a linear layer, y = x W^T, four outputs per work item, each reading its weight rows with
 * 8-wide vector loads (the translated GEMV (DeviceOp.GEMV) reads them one float at a time).
 *
 * OURO_DECODE_STEP: one whole loop step of one token (the L layers, the final norm and the exit gate) in ONE launch
 * of ONE work-group, in the order of infer/Decoder: phases separated by barriers, each spread over the group's items.
 * Decoding one token on a CPU is bound by launches, not by arithmetic (about 14 launches per layer per step at
 * ~100 us each through Aparapi and pocl, against ~50 us of work); one group keeps every intermediate vector in the
 * same place the per-op path uses (act) and orders them with barriers instead of launches. A single group uses one
 * compute unit, which is what a CPU decoding one token wants and what a GPU does not: OpenClDecodeOps uses it on CPU
 * devices only.
 *
 * OURO_STORE_ROWS: the KV cache's rows of one token, every (slot, key/value) in one launch (KvCache's rule decides
 * what each row holds; the table says it).
 */

/* Defined from Java (ClKernels.constants): OURO_PHASES, the phases per layer of the decode step; OURO_LT, the ints per
 * layer in the decode table; OURO_VT, the ints after the layers (offsets in act of H A1 ATT O X1 F1 G U M F, of which
 * the fused step does not use G and U, the score scratch, then the final norm, the exit gate's weight and bias in the
 * parameters). Within a layer's ints, the offsets of its tensors in ParamLayout's order: */
#define OURO_IN_NORM 0
#define OURO_Q 1
#define OURO_O 4
#define OURO_IN_NORM_2 5
#define OURO_POST_NORM 6
#define OURO_GATE 7
#define OURO_DOWN 9
#define OURO_POST_NORM_2 10

/* the 8 lanes of a summed pairwise */
float ouro_sum8(float8 a) {
    return ((a.s0 + a.s4) + (a.s2 + a.s6)) + ((a.s1 + a.s5) + (a.s3 + a.s7));
}

/* sum_k a[k] b[k] in 8 lanes (lane j sums k = j mod 8), then the lanes pairwise, then the tail in order */
float ouro_dot(__global const float *a, __global const float *b, int n) {
    float8 acc = (float8) (0.0f);
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        acc = fma(vload8(0, a + k), vload8(0, b + k), acc);
    }
    float s = ouro_sum8(acc);
    for (; k < n; k++) {
        s = fma(a[k], b[k], s);
    }
    return s;
}

/* rows j0 .. j0 + 3 of y = x W^T: four dot products sharing each load of x, lanes summed as in ouro_dot */
void ouro_dot4(__global float *y, __global const float *W, __global const float *x, int n, int j0) {
    __global const float *w0 = W + (size_t) j0 * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    float8 a0 = (float8) (0.0f), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        float8 xv = vload8(0, x + k);
        a0 = fma(vload8(0, w0 + k), xv, a0);
        a1 = fma(vload8(0, w1 + k), xv, a1);
        a2 = fma(vload8(0, w2 + k), xv, a2);
        a3 = fma(vload8(0, w3 + k), xv, a3);
    }
    float s0 = ouro_sum8(a0), s1 = ouro_sum8(a1), s2 = ouro_sum8(a2), s3 = ouro_sum8(a3);
    for (; k < n; k++) {
        s0 = fma(w0[k], x[k], s0);
        s1 = fma(w1[k], x[k], s1);
        s2 = fma(w2[k], x[k], s2);
        s3 = fma(w3[k], x[k], s3);
    }
    y[j0] = s0;
    y[j0 + 1] = s1;
    y[j0 + 2] = s2;
    y[j0 + 3] = s3;
}

void ouro_gemv(This *this, int gx) {
    /* y[o0 + j] = x[o1 ..] . w[o2 + j * n1 ..], j < n0, w in segment pseg; four rows per work item (global range
     * ceil(n0 / 4)), the last item's leftover rows one at a time */
    const int n = this->n1, rows = this->n0, j0 = gx * 4;
    __global const float *W = ouro_par(this, this->pseg) + this->o2;
    __global const float *x = ouro_act(this, this->o1);
    __global float *y = ouro_act(this, this->o0);
    if (j0 + 4 <= rows) {
        ouro_dot4(y, W, x, n, j0);
    } else {
        for (int j = j0; j < rows; j++) {
            y[j] = ouro_dot(W + (size_t) j * n, x, n);
        }
    }
}

/* y = x / rms(x) * w (+ r when r is not null), d elements, by one work item in the order of the translated op */
void ouro_norm1(__global float *y, __global const float *x, __global const float *w, __global const float *r, int d,
                float eps) {
    float ss = 0.0f;
    for (int i = 0; i < d; i++) {
        ss += x[i] * x[i];
    }
    float rs = 1.0f / sqrt(ss / d + eps);
    for (int i = 0; i < d; i++) {
        float v = x[i] * rs * w[i];
        y[i] = r ? v + r[i] : v;
    }
}

/*
 * Phase p of a loop step of one token. LoopKernel runs phases 0 .. 11 L in order in one work-group, with a barrier
 * (local and global memory) after each: the barrier sits at the top level of the translated kernel (pocl compiles
 * barriers inside branches very slowly), so each phase here is barrier-free. Per layer: 0 A1 = norm(H); 1 q, k, v;
 * 2 rope; 3 scores; 4 softmax; 5 attention's values; 6 O; 7 X1 = norm(O) + H and F1 = norm(X1); 8 M = silu(G) U;
 * 9 F; 10 H = norm(F) + X1. Phase 11 L: the final norm and the exit gate's logit. The norms are one item's
 * (d multiply-adds: nothing to spread), in the translated op's order.
 *
 * Scalars: n0 layers, n1 D, n2 heads, n3 FFN; o0 the decode table in tok (OURO_LT ints per layer, then OURO_VT);
 * o1 the query of (this step, layer 0) (its key and value follow, layer l's at + 3 D l); o2 the cached keys of
 * layer 0's slot, o3 the distance to the next layer's slot, o4 from a slot's keys to its values; o5 this step's gate
 * logit; o6 the token's position = the cached rows; f0 the norm's eps, f1 the attention scale; pseg the parameters'
 * segment.
 */
void ouro_decode_phase(This *this, int p, int lid) {
    const int L = this->n0, d = this->n1, heads = this->n2, ffn = this->n3, hd = d / heads, pairs = hd / 2;
    const int ls = get_local_size(0), len = this->o6, n1 = len + 1;
    const float eps = this->f0;
    __global float *act = ouro_act(this, 0); /* the decoder's workspace is one window (OpenClDecodeOps) */
    __global const float *W = ouro_par(this, this->pseg);
    __global const int *tab = this->tok + this->o0;
    __global const int *vt = tab + L * OURO_LT;
    __global float *H = act + vt[0], *A1 = act + vt[1], *ATT = act + vt[2], *O = act + vt[3], *X1 = act + vt[4];
    __global float *F1 = act + vt[5], *M = act + vt[8], *F = act + vt[9], *S = act + vt[10];
    if (p == L * OURO_PHASES) {
        if (lid == 0) {
            ouro_norm1(H, H, W + vt[11], 0, d, eps);
            float z = 0.0f;
            for (int i = 0; i < d; i++) {
                z += H[i] * W[vt[12] + i];
            }
            act[this->o5] = z + W[vt[13]];
        }
        return;
    }
    const int l = p / OURO_PHASES, k = p - l * OURO_PHASES;
    __global const int *lt = tab + l * OURO_LT;
    __global float *Q = act + this->o1 + 3 * d * l, *K = Q + d, *V = Q + 2 * d;
    __global const float *KC = act + this->o2 + this->o3 * l, *VC = KC + this->o4;
    if (k == 0) {
        if (lid == 0) {
            ouro_norm1(A1, H, W + lt[OURO_IN_NORM], 0, d, eps);
        }
    } else if (k == 1) {
        /* q, k, v: their weights follow each other, and so do the vectors */
        for (int o = lid; o < 3 * d; o += ls) {
            Q[o] = ouro_dot(W + lt[OURO_Q] + (size_t) o * d, A1, d);
        }
    } else if (k == 2) {
        /* rope on q and k at position len */
        for (int idx = lid; idx < 2 * heads * pairs; idx += ls) {
            int v = idx / (heads * pairs), rem = idx - v * heads * pairs, h = rem / pairs, i = rem - h * pairs;
            __global float *base = Q + v * d + h * hd;
            float c = this->ropeCos[len * pairs + i], s = this->ropeSin[len * pairs + i];
            float a = base[i], b = base[pairs + i];
            base[i] = a * c - b * s;
            base[pairs + i] = b * c + a * s;
        }
    } else if (k == 3) {
        /* attention of q over the cached rows [0, len) and then its own key */
        for (int idx = lid; idx < heads * n1; idx += ls) {
            int h = idx / n1, j = idx - h * n1;
            __global const float *kb = j < len ? KC + j * d : K;
            S[idx] = ouro_dot(Q + h * hd, kb + h * hd, hd) * this->f1;
        }
    } else if (k == 4) {
        for (int h = lid; h < heads; h += ls) {
            __global float *sh = S + h * n1;
            float mx = -3.0e38f;
            for (int j = 0; j < n1; j++) {
                mx = max(mx, sh[j]);
            }
            float sum = 0.0f;
            for (int j = 0; j < n1; j++) {
                sum += exp(sh[j] - mx);
            }
            float inv = 1.0f / sum;
            for (int j = 0; j < n1; j++) {
                sh[j] = exp(sh[j] - mx) * inv;
            }
        }
    } else if (k == 5) {
        for (int idx = lid; idx < d; idx += ls) {
            __global const float *sh = S + (idx / hd) * n1;
            float acc = 0.0f;
            for (int j = 0; j < len; j++) {
                acc += sh[j] * VC[j * d + idx];
            }
            ATT[idx] = acc + sh[len] * V[idx];
        }
    } else if (k == 6) {
        for (int o = lid; o < d; o += ls) {
            O[o] = ouro_dot(W + lt[OURO_O] + (size_t) o * d, ATT, d);
        }
    } else if (k == 7) {
        if (lid == 0) {
            ouro_norm1(X1, O, W + lt[OURO_IN_NORM_2], H, d, eps);
            ouro_norm1(F1, X1, W + lt[OURO_POST_NORM], 0, d, eps);
        }
    } else if (k == 8) {
        /* gate row i and up row i (ffn rows later) give m_i = silu(g_i) u_i */
        __global const float *WG = W + lt[OURO_GATE];
        for (int i = lid; i < ffn; i += ls) {
            float g = ouro_dot(WG + (size_t) i * d, F1, d), u = ouro_dot(WG + (size_t) (ffn + i) * d, F1, d);
            M[i] = g * (1.0f / (1.0f + exp(-g))) * u;
        }
    } else if (k == 9) {
        for (int o = lid; o < d; o += ls) {
            F[o] = ouro_dot(W + lt[OURO_DOWN] + (size_t) o * ffn, M, ffn);
        }
    } else if (lid == 0) {
        ouro_norm1(H, F, W + lt[OURO_POST_NORM_2], X1, d, eps);
    }
}

/*
 * Rows of the KV cache: n0 entries of 6 ints in tok from o0 (destination keys, destination values, source key,
 * source value, distance between the source steps, steps); each destination row (n1 floats) = the mean of the
 * source vectors. Global range n0 * 2 * n1.
 */
void ouro_store_rows(This *this, int gx) {
    const int d = this->n1, e = gx / (2 * d), r = gx - e * 2 * d, kv = r / d, i = r - kv * d;
    if (e < this->n0) {
        __global const int *t = this->tok + this->o0 + 6 * e;
        const int src = t[2 + kv], stride = t[4], count = t[5];
        float s = 0.0f;
        for (int j = 0; j < count; j++) {
            s += ouro_act(this, 0)[src + j * stride + i];
        }
        ouro_act(this, 0)[t[kv] + i] = s / count;
    }
}
