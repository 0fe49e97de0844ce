/*
 * Work-group reductions for GPUs (OpenClOps.useReduction; the GPU default). The translated ops give one work item
 * per row (cross-entropy) or per column (RMSNorm weight gradient, embedding backward), each looping over tens of
 * thousands of elements: about 2,000-16,000 items per launch, too few to fill a GPU. Here a work-group shares each
 * row, or the rows are cut into blocks summed in parallel and then once more in block order, or (the embedding) into
 * each token's rows. Every sum has a fixed order (the tree, the blocks, the rows), so a result is the same run to run;
 * the first two differ from the serial sum of the translated twin in rounding, the embedding's is the serial sum.
 */

/*
 * The maximum (max != 0) or the sum of v over the OURO_CE_GROUP items of the work-group, in a tree in local memory s
 * (OURO_CE_GROUP floats); every item gets it. Every item must call it: it holds barriers.
 */
float ouro_group_reduce(__local float *s, float v, int lx, int max) {
    s[lx] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = OURO_CE_GROUP / 2; h > 0; h >>= 1) {
        if (lx < h) {
            s[lx] = max ? fmax(s[lx], s[lx + h]) : s[lx] + s[lx + h];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float r = s[0];
    /* s is written again by the next reduction */
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/*
 * Cross-entropy forward, a work-group of OURO_CE_GROUP items per row (global range n0 * OURO_CE_GROUP): the same
 * fields as the translated CE_FWD (logits (n0, n1) at o0, lse -> o1 + n2 + row, ce -> o2 + n2 + row, 0 where the
 * target is below 0). Item i reads the 4-float vectors i, i + G, i + 2G ... of the row, so neighbouring items read
 * neighbouring memory; the max and then the sum of exp are reduced in a tree in tileA.
 */
void ouro_ce_fwd_wg(This *this, int gx, int lx) {
    const int V = this->n1, first = this->n2;
    const int row = gx / OURO_CE_GROUP;
    __global const float *x = ouro_act(this, this->o0) + (size_t) row * V;
    __local float *s = this->tileA;
    const int quads = V >> 2;
    float4 m4 = (float4) (-3.0e38f);
    for (int q = lx; q < quads; q += OURO_CE_GROUP) {
        m4 = fmax(m4, vload4(q, x));
    }
    float mx = fmax(fmax(m4.x, m4.y), fmax(m4.z, m4.w));
    for (int j = 4 * quads + lx; j < V; j += OURO_CE_GROUP) {
        mx = fmax(mx, x[j]);
    }
    mx = ouro_group_reduce(s, mx, lx, 1);
    float4 s4 = (float4) (0.0f);
    for (int q = lx; q < quads; q += OURO_CE_GROUP) {
        s4 += exp(vload4(q, x) - mx);
    }
    float sum = (s4.x + s4.y) + (s4.z + s4.w);
    for (int j = 4 * quads + lx; j < V; j += OURO_CE_GROUP) {
        sum += exp(x[j] - mx);
    }
    sum = ouro_group_reduce(s, sum, lx, 0);
    if (lx == 0) {
        const float l = mx + log(sum);
        const int t = this->tgt[first + row];
        ouro_act(this, this->o1)[first + row] = l;
        ouro_act(this, this->o2)[first + row] = t >= 0 ? l - x[t] : 0.0f;
    }
}

/*
 * Cross-entropy backward in place, a work-group per row as the forward (fields as the translated CE_BWD: dce at
 * o3 + n2 + row): logits -> dce * (softmax - onehot). No reduction: the group only spreads the row's columns over
 * its items, in the forward's pattern; the item that wrote the target's column subtracts dce from it.
 */
void ouro_ce_bwd_wg(This *this, int gx, int lx) {
    const int V = this->n1, first = this->n2;
    const int row = gx / OURO_CE_GROUP;
    __global float *x = ouro_act(this, this->o0) + (size_t) row * V;
    const int t = this->tgt[first + row];
    const float g = t >= 0 ? ouro_act(this, this->o3)[first + row] : 0.0f;
    const float l = ouro_act(this, this->o1)[first + row];
    const int quads = V >> 2;
    for (int q = lx; q < quads; q += OURO_CE_GROUP) {
        vstore4(g * exp(vload4(q, x) - l), q, x);
    }
    for (int j = 4 * quads + lx; j < V; j += OURO_CE_GROUP) {
        x[j] = g * exp(x[j] - l);
    }
    if (t >= 0 && lx == (t < 4 * quads ? (t >> 2) : t - 4 * quads) % OURO_CE_GROUP) {
        x[t] -= g;
    }
}

/*
 * RMSNorm weight gradient, first pass: partial[b * n1 + c] = the sum over the rows of block b (OURO_DW_ROWS rows, the
 * last one shorter) of dy * x * rstd in column c; x at o0, dy at o1 (n0 rows, n1 columns), rstd at o2, the partials at
 * o4. Global range (columns, blocks): neighbouring items read neighbouring columns.
 */
void ouro_rmsnorm_dw_partial(This *this, int gx, int gy) {
    const int rows = this->n0, width = this->n1;
    if (gx >= width) {
        return;
    }
    __global const float *x = ouro_act(this, this->o0);
    __global const float *dy = ouro_act(this, this->o1);
    __global const float *rstd = ouro_act(this, this->o2);
    const int r1 = min(rows, (gy + 1) * OURO_DW_ROWS);
    float s = 0.0f;
    for (int r = gy * OURO_DW_ROWS; r < r1; r++) {
        s += dy[r * width + gx] * x[r * width + gx] * rstd[r];
    }
    ouro_act(this, this->o4)[gy * width + gx] = s;
}

/* Second pass: the gradient at o3 of segment pseg += the n2 partials of each column, in block order. */
void ouro_rmsnorm_dw_sum(This *this, int gx) {
    const int width = this->n1, blocks = this->n2;
    if (gx >= width) {
        return;
    }
    __global const float *p = ouro_act(this, this->o4);
    float s = 0.0f;
    for (int b = 0; b < blocks; b++) {
        s += p[b * width + gx];
    }
    ouro_grad(this, this->pseg)[this->o3 + gx] += s;
}

/*
 * Embedding backward over the token index (TokenIndex, built by the host at the upload of the token ids): a work item
 * per (column, distinct token), global range n3 x n2, n3 the columns rounded up to the work-group: item gx takes column
 * gx % n3 of token gx / n3, so neighbouring items take neighbouring columns of the same rows (one dimension: a second
 * one of tens of thousands of tokens could pass a GPU's grid limit). The table's gradient row of the token (the table
 * at o0 of gradient segment pseg, rows of n1) += the dh rows of that token (dh at o1), added one by one in row order
 * as the serial op adds them, so the result is the serial op's bit for bit. In tok: the rows sorted by token at o2,
 * the tokens' first places in that list at o3 (n2 + 1 entries); rows at or past n0 are left out (each token's list
 * is ascending).
 */
void ouro_embed_bwd(This *this, int gx) {
    const int rows = this->n0, width = this->n1, c = gx % this->n3, t = gx / this->n3;
    if (c >= width) {
        return;
    }
    __global const int *order = this->tok + this->o2;
    const int first = this->tok[this->o3 + t], end = this->tok[this->o3 + t + 1];
    __global const float *dh = ouro_act(this, this->o1) + c;
    __global float *g = ouro_grad(this, this->pseg) + this->o0 + (size_t) this->tok[order[first]] * width + c;
    float s = *g;
    for (int i = first; i < end; i++) {
        const int r = order[i];
        if (r >= rows) {
            break;
        }
        s += dh[(size_t) r * width];
    }
    *g = s;
}
