/*
 * Flash-style causal attention for GPUs (the default on devices that are not CPUs; OpenClOps.useFlashAttention).
 * A work-group of OURO_FQ items takes one block of OURO_FQ queries (or, in ouro_flash_bwd_kv, keys) of one
 * (sequence b, head h), one row per item, and walks the other side in tiles of ouro_flash_rows(hd) rows that the
 * group stages cooperatively in local memory (LoopKernel's tileA / tileB, 64 x 65 floats each): each key and value
 * row is read from global memory once per block of OURO_FQ queries instead of once per query, as the translated
 * twin does. Softmax online in fp32; tiles wholly above the diagonal for the whole block are skipped; only each
 * row's log-sum-exp is kept (no S x S storage) and the backward recomputes the probabilities per tile.
 *
 * q o0, k o1, v o2, lse o3 (B,H,S), out (forward) or dout o4, dq o5, out (backward) o6, dk o7, dv o8, all but lse
 * (B,S,H,hd) in act; n0 batch, n1 seqLen, n2 heads, n3 head size (at most OURO_AHD), f0 scale.
 * Global range B*H*ceil(S/OURO_FQ)*OURO_FQ, local OURO_FQ. The tile loops' bounds depend only on the group, and
 * items past the sequence end do no work but reach every barrier.
 */

/* rows of hd floats per staged tile: as many as fit in OURO_FTILE floats, at most OURO_FQ; ouro_flash_bwd_kv keeps
 * per-row values in the tile's last OURO_FQ floats (OURO_FTILE + OURO_FQ = 64 x 65) */
int ouro_flash_rows(int hd) {
    return min(OURO_FQ, OURO_FTILE / hd);
}

/* the group's item lx copies its share of kt key and value rows from row j0 of (K, V) (rows d apart) into the tiles */
void ouro_flash_stage_kv(__local float *Kt, __local float *Vt, __global const float *K, __global const float *V, int j0,
                         int kt, int hd, int d, int lx) {
    for (int e = lx; e < kt * hd; e += OURO_FQ) {
        const int t = e / hd, g = (j0 + t) * d + e - t * hd;
        Kt[e] = K[g];
        Vt[e] = V[g];
    }
}

/* out = softmax(q k^T * scale, causal) v and lse = log sum exp per query row; one query per item */
void ouro_flash_fwd(This *this, int gx, int lx) {
    const int S = this->n1, H = this->n2, hd = this->n3, d = H * hd, R = ouro_flash_rows(hd);
    const int blocks = (S + OURO_FQ - 1) / OURO_FQ, grp = (gx - lx) / OURO_FQ;
    const int p = grp / blocks, b = p / H, h = p % H, s0 = (grp % blocks) * OURO_FQ, s = s0 + lx;
    const int live = s < S;
    const int last = min(s0 + OURO_FQ, S) - 1; /* the last key any query of the block sees */
    __global const float *K = ouro_act(this, this->o1) + b * S * d + h * hd;
    __global const float *V = ouro_act(this, this->o2) + b * S * d + h * hd;
    __local float *Kt = this->tileA, *Vt = this->tileB;
    float q[OURO_AHD], acc[OURO_AHD], sc[OURO_FQ];
    float mx = -3.0e38f, l = 0.0f;
    if (live) {
        __global const float *qr = ouro_act(this, this->o0) + (b * S + s) * d + h * hd;
        for (int i = 0; i < hd; i++) {
            q[i] = qr[i] * this->f0; /* the scale folded into q once */
            acc[i] = 0.0f;
        }
    }
    for (int j0 = 0; j0 <= last; j0 += R) {
        const int kt = min(R, last + 1 - j0);
        ouro_flash_stage_kv(Kt, Vt, K, V, j0, kt, hd, d, lx);
        barrier(CLK_LOCAL_MEM_FENCE);
        const int n = live ? min(kt, s - j0 + 1) : 0; /* causal: keys j0 + t <= s */
        if (n > 0) {
            float tm = mx;
            for (int t = 0; t < n; t++) {
                float dot = 0.0f;
                for (int i = 0; i < hd; i++) {
                    dot = fma(q[i], Kt[t * hd + i], dot);
                }
                sc[t] = dot;
                tm = fmax(tm, dot);
            }
            const float corr = exp(mx - tm); /* rescale once per tile */
            l *= corr;
            for (int i = 0; i < hd; i++) {
                acc[i] *= corr;
            }
            for (int t = 0; t < n; t++) {
                const float e = exp(sc[t] - tm);
                l += e;
                for (int i = 0; i < hd; i++) {
                    acc[i] = fma(e, Vt[t * hd + i], acc[i]);
                }
            }
            mx = tm;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (live) {
        __global float *out = ouro_act(this, this->o4) + (b * S + s) * d + h * hd;
        const float inv = 1.0f / l;
        for (int i = 0; i < hd; i++) {
            out[i] = acc[i] * inv;
        }
        ouro_act(this, this->o3)[p * S + s] = mx + log(l);
    }
}

/*
 * dq += dS k over the keys a query sees, dS = P (dout . v - D) * scale, P = exp(q . k * scale - lse) recomputed per
 * tile, D = dout . out; one query per item, K and V tiles in local memory.
 */
void ouro_flash_bwd_q(This *this, int gx, int lx) {
    const int S = this->n1, H = this->n2, hd = this->n3, d = H * hd, R = ouro_flash_rows(hd);
    const int blocks = (S + OURO_FQ - 1) / OURO_FQ, grp = (gx - lx) / OURO_FQ;
    const int p = grp / blocks, b = p / H, h = p % H, s0 = (grp % blocks) * OURO_FQ, s = s0 + lx;
    const int live = s < S;
    const int last = min(s0 + OURO_FQ, S) - 1;
    const int row = (b * S + s) * d + h * hd;
    __global const float *K = ouro_act(this, this->o1) + b * S * d + h * hd;
    __global const float *V = ouro_act(this, this->o2) + b * S * d + h * hd;
    __local float *Kt = this->tileA, *Vt = this->tileB;
    const float scale = this->f0;
    float q[OURO_AHD], dout[OURO_AHD], acc[OURO_AHD];
    float D = 0.0f, lse = 0.0f;
    if (live) {
        __global const float *qr = ouro_act(this, this->o0) + row, *dr = ouro_act(this, this->o4) + row;
        __global const float *orow = ouro_act(this, this->o6) + row;
        for (int i = 0; i < hd; i++) {
            q[i] = qr[i];
            dout[i] = dr[i];
            acc[i] = 0.0f;
            D = fma(dr[i], orow[i], D);
        }
        lse = ouro_act(this, this->o3)[p * S + s];
    }
    for (int j0 = 0; j0 <= last; j0 += R) {
        const int kt = min(R, last + 1 - j0);
        ouro_flash_stage_kv(Kt, Vt, K, V, j0, kt, hd, d, lx);
        barrier(CLK_LOCAL_MEM_FENCE);
        const int n = live ? min(kt, s - j0 + 1) : 0;
        for (int t = 0; t < n; t++) {
            float dot = 0.0f, g = 0.0f;
            for (int i = 0; i < hd; i++) {
                dot = fma(q[i], Kt[t * hd + i], dot);
                g = fma(dout[i], Vt[t * hd + i], g);
            }
            const float ds = exp(dot * scale - lse) * (g - D) * scale;
            for (int i = 0; i < hd; i++) {
                acc[i] = fma(ds, Kt[t * hd + i], acc[i]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (live) {
        __global float *dq = ouro_act(this, this->o5) + row;
        for (int i = 0; i < hd; i++) {
            dq[i] += acc[i];
        }
    }
}

/*
 * dk += dS^T q and dv += P^T dout over the queries that see a key; one key per item, tiles of queries and of dout in
 * local memory, with each staged query's lse and D = dout . out after them (the tiles' last OURO_FQ floats).
 */
void ouro_flash_bwd_kv(This *this, int gx, int lx) {
    const int S = this->n1, H = this->n2, hd = this->n3, d = H * hd, R = ouro_flash_rows(hd);
    const int blocks = (S + OURO_FQ - 1) / OURO_FQ, grp = (gx - lx) / OURO_FQ;
    const int p = grp / blocks, b = p / H, h = p % H, j0 = (grp % blocks) * OURO_FQ, j = j0 + lx;
    const int live = j < S;
    const int seq = b * S * d + h * hd, row = seq + j * d;
    __global const float *Q = ouro_act(this, this->o0) + seq, *DO = ouro_act(this, this->o4) + seq;
    __global const float *OUT = ouro_act(this, this->o6) + seq, *LSE = ouro_act(this, this->o3) + p * S;
    __local float *Qt = this->tileA, *Dt = this->tileB;
    __local float *Lt = this->tileA + OURO_FTILE, *Ct = this->tileB + OURO_FTILE; /* lse and D per staged query */
    const float scale = this->f0;
    float k[OURO_AHD], v[OURO_AHD], accK[OURO_AHD], accV[OURO_AHD];
    if (live) {
        __global const float *kr = ouro_act(this, this->o1) + row, *vr = ouro_act(this, this->o2) + row;
        for (int i = 0; i < hd; i++) {
            k[i] = kr[i];
            v[i] = vr[i];
            accK[i] = 0.0f;
            accV[i] = 0.0f;
        }
    }
    /* queries before the block's first key see none of its keys */
    for (int q0 = j0; q0 < S; q0 += R) {
        const int qt = min(R, S - q0);
        for (int e = lx; e < qt * hd; e += OURO_FQ) {
            const int r = e / hd, g = (q0 + r) * d + e - r * hd;
            Qt[e] = Q[g];
            Dt[e] = DO[g];
        }
        for (int r = lx; r < qt; r += OURO_FQ) {
            __global const float *dr = DO + (q0 + r) * d, *orow = OUT + (q0 + r) * d;
            float D = 0.0f;
            for (int i = 0; i < hd; i++) {
                D = fma(dr[i], orow[i], D);
            }
            Lt[r] = LSE[q0 + r];
            Ct[r] = D;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int first = live ? max(0, j - q0) : qt; /* causal: queries q0 + r >= j */
        for (int r = first; r < qt; r++) {
            float dot = 0.0f, g = 0.0f;
            for (int i = 0; i < hd; i++) {
                dot = fma(k[i], Qt[r * hd + i], dot);
                g = fma(v[i], Dt[r * hd + i], g);
            }
            const float pj = exp(dot * scale - Lt[r]);
            const float ds = pj * (g - Ct[r]) * scale;
            for (int i = 0; i < hd; i++) {
                accK[i] = fma(ds, Qt[r * hd + i], accK[i]);
                accV[i] = fma(pj, Dt[r * hd + i], accV[i]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (live) {
        __global float *dk = ouro_act(this, this->o7) + row, *dv = ouro_act(this, this->o8) + row;
        for (int i = 0; i < hd; i++) {
            dk[i] += accK[i];
            dv[i] += accV[i];
        }
    }
}
