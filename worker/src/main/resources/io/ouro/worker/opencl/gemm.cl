/*
 * Hand-written OpenCL C ops of LoopKernel. ClKernels splices this text into Aparapi's translation of LoopKernel
 * (after the struct This that holds the kernel's arguments) and makes LoopKernel.handWritten call ouro_hand, so
 * these ops read and write the same device buffers as every translated op.
 *
 * The GEMM computes C(i,j) (= or +=) sum_k A(i,k) B(j,k), C (m,n), with element (r,c) of X at
 * xOff + r*xRs + c*xCs in the operand named by xSel (buffers.cl), as the translated one does.
 *
 * Defined into the program from Java (ClKernels.constants): the op ids (OURO_GEMM_OUTER ...), OURO_AQ / OURO_AHD
 * (attention forward: queries per work item, largest head size) and OURO_MR / OURO_NR (the register-blocked variant's
 * micro-tile: rows x columns of C per work item).
 */

/* attention forward: keys per tile */
#define OURO_AK 16

/* one row of the micro-tile: C(i, j0 .. j0 + NR) (= or +=) v, the first `cols` of them */
void ouro_store_row(__global float *c, float16 v, int cols, int add) {
    if (cols == OURO_NR) {
        if (add) {
            v += vload16(0, c);
        }
        vstore16(v, 0, c);
    } else {
        float t[OURO_NR];
        vstore16(v, 0, t);
        for (int j = 0; j < cols; j++) {
            c[j] = add ? c[j] + t[j] : t[j];
        }
    }
}

#define OURO_FMA8(a0, a1, a2, a3, a4, a5, a6, a7, bv) \
    c0 = fma((float16)(a0), bv, c0); c1 = fma((float16)(a1), bv, c1); \
    c2 = fma((float16)(a2), bv, c2); c3 = fma((float16)(a3), bv, c3); \
    c4 = fma((float16)(a4), bv, c4); c5 = fma((float16)(a5), bv, c5); \
    c6 = fma((float16)(a6), bv, c6); c7 = fma((float16)(a7), bv, c7);

/*
 * Packs the (n, kk) operand X(j,k) at xOff + j*xRs + k*xCs of buffer xSel (given as aSel, aOff, aRs, aCs) into
 * panels of P = n1 rows in act at o0: panel p holds X(pP + r, k) at o0 + p*P*kk + k*P + r, rows past n zero. So a
 * micro-tile's operand is one contiguous stream. Global range (ceil(kk/16), ceil(n/P)).
 */
void ouro_pack(This *this, int gx, int gy) {
    const int n = this->gm, kk = this->gk, P = this->n1;
    const int k0 = gx * 16, p = gy;
    if (k0 >= kk || p * P >= n) {
        return;
    }
    __global const float *X = ouro_buf(this, this->aSel, this->aOff);
    __global float *D = ouro_act(this, this->o0) + (size_t) p * P * kk;
    const int rs = this->aRs, cs = this->aCs, k1 = min(kk, k0 + 16);
    for (int k = k0; k < k1; k++) {
        for (int r = 0; r < P; r++) {
            int j = p * P + r;
            D[k * P + r] = j < n ? X[j * rs + k * cs] : 0.0f;
        }
    }
}

/*
 * Register-blocked GEMM for a CPU device, C with j contiguous (cCs == 1): each work item keeps an 8 x 16 block of C
 * in eight float16 registers and walks k, loading 16 B values as one vector and broadcasting 8 A values. B is either
 * packed in panels of 16 columns (o1 = 1: one contiguous stream, zero past n) or has j contiguous (bRs == 1); A is
 * packed in panels of 8 rows (o0 = 1) or read through its strides. Global range (ceil(n/16), ceil(m/8)), or with
 * o2 = 1 (ceil(m/8), ceil(n/16)): the first dimension, whose neighbouring work-groups run close in time, then walks
 * the rows, so each panel of B is read from memory once while the smaller A stays in cache (C wider than tall).
 */
void ouro_gemm_outer(This *this, int gx, int gy) {
    if (this->o2 == 1) {
        const int t = gx;
        gx = gy;
        gy = t;
    }
    const int m = this->gm, n = this->gn, kk = this->gk;
    const int i0 = gy * OURO_MR, j0 = gx * OURO_NR;
    if (i0 >= m || j0 >= n) {
        return;
    }
    __global const float *A = ouro_buf(this, this->aSel, this->aOff);
    __global const float *B = ouro_buf(this, this->bSel, this->bOff);
    __global float *C = ouro_buf(this, this->cSel, this->cOff);
    const int aPacked = this->o0 == 1, bPacked = this->o1 == 1;
    const int aRs = aPacked ? 1 : this->aRs, aCs = aPacked ? OURO_MR : this->aCs;
    const int bCs = bPacked ? OURO_NR : this->bCs, cRs = this->cRs;
    const int rows = min(OURO_MR, m - i0), cols = min(OURO_NR, n - j0);
    float16 c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f, c4 = 0.0f, c5 = 0.0f, c6 = 0.0f, c7 = 0.0f;
    __global const float *a = aPacked ? A + (size_t) i0 * kk : A + i0 * aRs;
    __global const float *b = bPacked ? B + (size_t) j0 * kk : B + j0;
    /* packed operands are zero past the matrix, so their edge tiles take the fast loop too */
    if ((rows == OURO_MR || aPacked) && (cols == OURO_NR || bPacked)) {
        if (aRs == 1) {
            for (int k = 0; k < kk; k++) {
                float16 bv = vload16(0, b);
                float8 av = vload8(0, a);
                OURO_FMA8(av.s0, av.s1, av.s2, av.s3, av.s4, av.s5, av.s6, av.s7, bv)
                a += aCs;
                b += bCs;
            }
        } else {
            for (int k = 0; k < kk; k++) {
                float16 bv = vload16(0, b);
                OURO_FMA8(a[0], a[aRs], a[2 * aRs], a[3 * aRs], a[4 * aRs], a[5 * aRs], a[6 * aRs], a[7 * aRs], bv)
                a += aCs;
                b += bCs;
            }
        }
    } else {
        /* an edge tile: rows and columns past the matrix read as zero (clamped, never out of bounds) */
        float t[OURO_NR];
        for (int k = 0; k < kk; k++) {
            for (int j = 0; j < OURO_NR; j++) {
                t[j] = j < cols ? b[j] : 0.0f;
            }
            float16 bv = vload16(0, t);
            float av[OURO_MR];
            for (int r = 0; r < OURO_MR; r++) {
                av[r] = r < rows ? a[r * aRs] : 0.0f;
            }
            OURO_FMA8(av[0], av[1], av[2], av[3], av[4], av[5], av[6], av[7], bv)
            a += aCs;
            b += bCs;
        }
    }
    __global float *c = C + i0 * cRs + j0;
    const int add = this->accumulate == 1;
    if (rows > 0) ouro_store_row(c, c0, cols, add);
    if (rows > 1) ouro_store_row(c + cRs, c1, cols, add);
    if (rows > 2) ouro_store_row(c + 2 * cRs, c2, cols, add);
    if (rows > 3) ouro_store_row(c + 3 * cRs, c3, cols, add);
    if (rows > 4) ouro_store_row(c + 4 * cRs, c4, cols, add);
    if (rows > 5) ouro_store_row(c + 5 * cRs, c5, cols, add);
    if (rows > 6) ouro_store_row(c + 6 * cRs, c6, cols, add);
    if (rows > 7) ouro_store_row(c + 7 * cRs, c7, cols, add);
}

/*
 * Tiled GEMM for a GPU, any strides: a work-group of 16 x 16 items computes a 64 x 64 block of C, each item a
 * 4 x 4 micro-tile (rows ly + 16r, columns lx + 16c, so that neighbouring items touch neighbouring words), from
 * 64 x 64 slices of A and B staged k-major in local memory (rows padded to 65 words against bank conflicts). Every
 * item of the group reaches every barrier: items past the matrix compute on zeros and store nothing.
 * Global range (ceil(n/64)*16, ceil(m/64)*16), local (16, 16).
 */
void ouro_gemm_tiled(This *this, int gx, int gy, int lx, int ly) {
    const int m = this->gm, n = this->gn, kk = this->gk;
    __global const float *A = ouro_buf(this, this->aSel, this->aOff);
    __global const float *B = ouro_buf(this, this->bSel, this->bOff);
    __global float *C = ouro_buf(this, this->cSel, this->cOff);
    const int aRs = this->aRs, aCs = this->aCs, bRs = this->bRs, bCs = this->bCs;
    __local float *As = this->tileA;
    __local float *Bs = this->tileB;
    const int rowBase = (gy - ly) * 4, colBase = (gx - lx) * 4;
    const int tid = ly * 16 + lx;
    /* which index varies fastest across neighbouring items when staging: the one contiguous in memory */
    const int aKFast = aCs == 1, bKFast = bCs == 1;
    float acc[4][4];
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 4; c++) {
            acc[r][c] = 0.0f;
        }
    }
    for (int k0 = 0; k0 < kk; k0 += 64) {
        for (int e = 0; e < 16; e++) {
            int idx = e * 256 + tid;
            int fast = idx & 63, slow = idx >> 6;
            int ar = aKFast ? slow : fast, ak = aKFast ? fast : slow;
            int br = bKFast ? slow : fast, bk = bKFast ? fast : slow;
            float va = 0.0f, vb = 0.0f;
            if (k0 + ak < kk && rowBase + ar < m) {
                va = A[(rowBase + ar) * aRs + (k0 + ak) * aCs];
            }
            if (k0 + bk < kk && colBase + br < n) {
                vb = B[(colBase + br) * bRs + (k0 + bk) * bCs];
            }
            As[ak * 65 + ar] = va;
            Bs[bk * 65 + br] = vb;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int q = 0; q < 64; q++) {
            float a4[4], b4[4];
            for (int r = 0; r < 4; r++) {
                a4[r] = As[q * 65 + ly + 16 * r];
                b4[r] = Bs[q * 65 + lx + 16 * r];
            }
            for (int r = 0; r < 4; r++) {
                for (int c = 0; c < 4; c++) {
                    acc[r][c] = fma(a4[r], b4[c], acc[r][c]);
                }
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const int add = this->accumulate == 1;
    for (int r = 0; r < 4; r++) {
        int i = rowBase + ly + 16 * r;
        for (int c = 0; c < 4; c++) {
            int j = colBase + lx + 16 * c;
            if (i < m && j < n) {
                __global float *p = C + i * this->cRs + j * this->cCs;
                *p = add ? *p + acc[r][c] : acc[r][c];
            }
        }
    }
}

/*
 * Causal attention forward tiled over keys (flash-style): one work item takes OURO_AQ consecutive queries of one
 * (sequence b, head h), walks the keys in tiles of OURO_AK, computes the tile's scores, rescales its running
 * maximum, sum and output accumulators once per tile (online softmax), and keeps only each row's log-sum-exp
 * for the backward pass: no S x S storage, and each key and value row is read once per OURO_AQ queries.
 * q o0, k o1, v o2, lse o3 (B,H,S), out o4, all (B,S,H,hd) in act; n0 batch, n1 seqLen, n2 heads, n3 head
 * size (at most OURO_AHD), f0 scale. Global range B*H*ceil(S/OURO_AQ).
 */
void ouro_attn_fwd(This *this, int gx) {
    const int B = this->n0, S = this->n1, H = this->n2, hd = this->n3;
    const int qBlocks = (S + OURO_AQ - 1) / OURO_AQ;
    if (gx >= B * H * qBlocks) {
        return;
    }
    const int p = gx / qBlocks, s0 = (gx % qBlocks) * OURO_AQ, b = p / H, h = p % H, d = H * hd;
    const int rows = min(OURO_AQ, S - s0);
    __global const float *q = ouro_act(this, this->o0) + (b * S + s0) * d + h * hd;
    __global const float *K = ouro_act(this, this->o1) + b * S * d + h * hd;
    __global const float *V = ouro_act(this, this->o2) + b * S * d + h * hd;
    const float scale = this->f0;
    float acc[OURO_AQ][OURO_AHD];
    float mx[OURO_AQ], l[OURO_AQ];
    for (int r = 0; r < OURO_AQ; r++) {
        mx[r] = -3.0e38f;
        l[r] = 0.0f;
        for (int i = 0; i < hd; i++) {
            acc[r][i] = 0.0f;
        }
    }
    const int last = s0 + rows - 1; /* the last key any of these queries sees */
    for (int j0 = 0; j0 <= last; j0 += OURO_AK) {
        float sc[OURO_AQ][OURO_AK];
        const int kt = min(OURO_AK, last + 1 - j0);
        for (int t = 0; t < kt; t++) {
            __global const float *kr = K + (j0 + t) * d;
            for (int r = 0; r < OURO_AQ; r++) {
                float dot = 0.0f;
                if (r < rows) {
                    __global const float *qr = q + r * d;
                    for (int i = 0; i < hd; i++) {
                        dot = fma(qr[i], kr[i], dot);
                    }
                }
                /* causal mask: query s0 + r sees keys up to itself */
                sc[r][t] = (r < rows && j0 + t <= s0 + r) ? dot * scale : -INFINITY;
            }
        }
        for (int r = 0; r < rows; r++) {
            float tm = mx[r];
            for (int t = 0; t < kt; t++) {
                tm = fmax(tm, sc[r][t]);
            }
            float corr = exp(mx[r] - tm);
            float sum = l[r] * corr;
            for (int i = 0; i < hd; i++) {
                acc[r][i] *= corr;
            }
            for (int t = 0; t < kt; t++) {
                float e = exp(sc[r][t] - tm);
                sum += e;
                __global const float *vr = V + (j0 + t) * d;
                for (int i = 0; i < hd; i++) {
                    acc[r][i] = fma(e, vr[i], acc[r][i]);
                }
            }
            l[r] = sum;
            mx[r] = tm;
        }
    }
    __global float *out = ouro_act(this, this->o4) + (b * S + s0) * d + h * hd;
    __global float *lse = ouro_act(this, this->o3) + p * S + s0;
    for (int r = 0; r < rows; r++) {
        float inv = 1.0f / l[r];
        for (int i = 0; i < hd; i++) {
            out[r * d + i] = acc[r][i] * inv;
        }
        lse[r] = mx[r] + log(l[r]);
    }
}

/*
 * Causal attention backward, probabilities recomputed from q, k and the forward's log-sum-exp (no S x S storage):
 * dS = P (dP - D) * scale with dP = dout . v and D = dout . out. ouro_attn_bwd_q: one work item per OURO_AQ queries,
 * dq += dS k over the keys each sees; ouro_attn_bwd_kv: one work item per OURO_AQ keys, dk += dS^T q and
 * dv += P^T dout over the queries that see them. Each streamed row serves OURO_AQ rows of the item.
 * q o0, k o1, v o2, lse o3, dout o4, dq o5, out o6, dk o7, dv o8; shapes as ouro_attn_fwd.
 */
void ouro_attn_bwd_q(This *this, int gx) {
    const int B = this->n0, S = this->n1, H = this->n2, hd = this->n3;
    const int blocks = (S + OURO_AQ - 1) / OURO_AQ;
    if (gx >= B * H * blocks) {
        return;
    }
    const int p = gx / blocks, s0 = (gx % blocks) * OURO_AQ, b = p / H, h = p % H, d = H * hd;
    const int rows = min(OURO_AQ, S - s0);
    const int base = (b * S + s0) * d + h * hd;
    __global const float *q = ouro_act(this, this->o0) + base, *dout = ouro_act(this, this->o4) + base;
    __global const float *out = ouro_act(this, this->o6) + base;
    __global const float *K = ouro_act(this, this->o1) + b * S * d + h * hd, *V = ouro_act(this, this->o2) + b * S * d + h * hd;
    __global const float *lse = ouro_act(this, this->o3) + p * S + s0;
    const float scale = this->f0;
    float acc[OURO_AQ][OURO_AHD], D[OURO_AQ];
    for (int r = 0; r < rows; r++) {
        float dd = 0.0f;
        for (int i = 0; i < hd; i++) {
            acc[r][i] = 0.0f;
            dd = fma(dout[r * d + i], out[r * d + i], dd);
        }
        D[r] = dd;
    }
    for (int j = 0; j < s0 + rows; j++) {
        __global const float *kr = K + j * d, *vr = V + j * d;
        for (int r = max(0, j - s0); r < rows; r++) {
            float dot = 0.0f, g = 0.0f;
            for (int i = 0; i < hd; i++) {
                dot = fma(q[r * d + i], kr[i], dot);
                g = fma(dout[r * d + i], vr[i], g);
            }
            float ds = exp(dot * scale - lse[r]) * (g - D[r]) * scale;
            for (int i = 0; i < hd; i++) {
                acc[r][i] = fma(ds, kr[i], acc[r][i]);
            }
        }
    }
    __global float *dq = ouro_act(this, this->o5) + base;
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < hd; i++) {
            dq[r * d + i] += acc[r][i];
        }
    }
}

void ouro_attn_bwd_kv(This *this, int gx) {
    const int B = this->n0, S = this->n1, H = this->n2, hd = this->n3;
    const int blocks = (S + OURO_AQ - 1) / OURO_AQ;
    if (gx >= B * H * blocks) {
        return;
    }
    const int p = gx / blocks, j0 = (gx % blocks) * OURO_AQ, b = p / H, h = p % H, d = H * hd;
    const int keys = min(OURO_AQ, S - j0);
    const int seq = b * S * d + h * hd;
    __global const float *k = ouro_act(this, this->o1) + seq + j0 * d, *v = ouro_act(this, this->o2) + seq + j0 * d;
    __global const float *Q = ouro_act(this, this->o0) + seq, *DO = ouro_act(this, this->o4) + seq;
    __global const float *OUT = ouro_act(this, this->o6) + seq;
    __global const float *lse = ouro_act(this, this->o3) + p * S;
    const float scale = this->f0;
    float accK[OURO_AQ][OURO_AHD], accV[OURO_AQ][OURO_AHD];
    for (int t = 0; t < keys; t++) {
        for (int i = 0; i < hd; i++) {
            accK[t][i] = 0.0f;
            accV[t][i] = 0.0f;
        }
    }
    for (int s = j0; s < S; s++) {
        __global const float *qs = Q + s * d, *dos = DO + s * d, *os = OUT + s * d;
        float dd = 0.0f;
        for (int i = 0; i < hd; i++) {
            dd = fma(dos[i], os[i], dd);
        }
        const float l = lse[s];
        const int tn = min(keys, s - j0 + 1); /* keys j0 + t <= s */
        for (int t = 0; t < tn; t++) {
            float dot = 0.0f, g = 0.0f;
            for (int i = 0; i < hd; i++) {
                dot = fma(qs[i], k[t * d + i], dot);
                g = fma(dos[i], v[t * d + i], g);
            }
            float pj = exp(dot * scale - l);
            float ds = pj * (g - dd) * scale;
            for (int i = 0; i < hd; i++) {
                accK[t][i] = fma(ds, qs[i], accK[t][i]);
                accV[t][i] = fma(pj, dos[i], accV[t][i]);
            }
        }
    }
    __global float *dk = ouro_act(this, this->o7) + seq + j0 * d, *dv = ouro_act(this, this->o8) + seq + j0 * d;
    for (int t = 0; t < keys; t++) {
        for (int i = 0; i < hd; i++) {
            dk[t * d + i] += accK[t][i];
            dv[t * d + i] += accV[t][i];
        }
    }
}

/*
 * The GEMM as dot products for CPU devices, when A and B are both k-contiguous (aCs = bCs = 1): each work item
 * computes a 4 x 4 block of C as 16 dot products over k, with no local memory and no barrier, so the compiler
 * vectorizes the k loop (a reduction: pocl needs -cl-unsafe-math-optimizations). The operands are pointers taken once
 * (buffers.cl), so the same loop runs whichever segment or window they are in. Rows and columns past the edge are
 * clamped for loading and skipped when storing. Global range (ceil(n/4), ceil(m/4)).
 */
void ouro_gemm_dot(This *this, int gx, int gy) {
    const int m = this->gm, n = this->gn, kk = this->gk, i0 = gy * 4, j0 = gx * 4;
    if (i0 >= m || j0 >= n) {
        return;
    }
    __global const float *A = ouro_buf(this, this->aSel, this->aOff);
    __global const float *B = ouro_buf(this, this->bSel, this->bOff);
    __global float *C = ouro_buf(this, this->cSel, this->cOff);
    const int ars = this->aRs, brs = this->bRs;
    __global const float *a0 = A + min(i0, m - 1) * ars, *a1 = A + min(i0 + 1, m - 1) * ars;
    __global const float *a2 = A + min(i0 + 2, m - 1) * ars, *a3 = A + min(i0 + 3, m - 1) * ars;
    __global const float *b0 = B + min(j0, n - 1) * brs, *b1 = B + min(j0 + 1, n - 1) * brs;
    __global const float *b2 = B + min(j0 + 2, n - 1) * brs, *b3 = B + min(j0 + 3, n - 1) * brs;
    float s[16];
    for (int e = 0; e < 16; e++) {
        s[e] = 0.0f;
    }
    for (int q = 0; q < kk; q++) {
        const float x0 = a0[q], x1 = a1[q], x2 = a2[q], x3 = a3[q], y0 = b0[q], y1 = b1[q], y2 = b2[q], y3 = b3[q];
        s[0] += x0 * y0; s[1] += x0 * y1; s[2] += x0 * y2; s[3] += x0 * y3;
        s[4] += x1 * y0; s[5] += x1 * y1; s[6] += x1 * y2; s[7] += x1 * y3;
        s[8] += x2 * y0; s[9] += x2 * y1; s[10] += x2 * y2; s[11] += x2 * y3;
        s[12] += x3 * y0; s[13] += x3 * y1; s[14] += x3 * y2; s[15] += x3 * y3;
    }
    const int crs = this->cRs, ccs = this->cCs, add = this->accumulate;
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 4; c++) {
            if (i0 + r < m && j0 + c < n) {
                __global float *p = C + (i0 + r) * crs + (j0 + c) * ccs;
                *p = add ? *p + s[r * 4 + c] : s[r * 4 + c];
            }
        }
    }
}
