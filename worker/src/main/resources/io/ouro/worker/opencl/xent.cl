/*
 * Cross-entropy over blocks of logit rows for a CPU device (OpenClOps.useHandCrossEntropy; the translated CE_FWD /
 * CE_BWD (DeviceOp) are the reference twins and what GPUs run): one work item per row, the vocabulary walked in 16-wide
 * vectors (max, then sum of exp; the exp vectorized), instead of the translation's scalar loops. Fields as the
 * translated ops: rows n0 of a block whose first row is n2, vocabulary n1, logits at o0 (block, V) in act; forward
 * lse -> act[o1 + row], ce -> act[o2 + row]; backward in place: logits -> dce[o3 + row] * (softmax - onehot), lse at
 * o1. Targets below 0 are ignored rows (ce 0, gradient 0).
 */

float ouro_max16(float16 v) {
    float8 a = fmax(v.lo, v.hi);
    float4 b = fmax(a.lo, a.hi);
    float2 c = fmax(b.lo, b.hi);
    return fmax(c.x, c.y);
}

float ouro_sum16(float16 v) {
    float8 a = v.lo + v.hi;
    float4 b = a.lo + a.hi;
    float2 c = b.lo + b.hi;
    return c.x + c.y;
}

void ouro_ce_fwd(This *this, int gx) {
    const int rows = this->n0, V = this->n1, first = this->n2;
    if (gx >= rows) {
        return;
    }
    __global const float *x = ouro_act(this, this->o0) + (size_t) gx * V;
    const int full = V & ~15;
    float16 m16 = (float16) (-3.0e38f);
    for (int j = 0; j < full; j += 16) {
        m16 = fmax(m16, vload16(0, x + j));
    }
    float mx = ouro_max16(m16);
    for (int j = full; j < V; j++) {
        mx = fmax(mx, x[j]);
    }
    float16 s16 = (float16) (0.0f);
    for (int j = 0; j < full; j += 16) {
        s16 += exp(vload16(0, x + j) - mx);
    }
    float sum = ouro_sum16(s16);
    for (int j = full; j < V; j++) {
        sum += exp(x[j] - mx);
    }
    const float l = mx + log(sum);
    const int t = this->tgt[first + gx];
    ouro_act(this, this->o1)[first + gx] = l;
    ouro_act(this, this->o2)[first + gx] = t >= 0 ? l - x[t] : 0.0f;
}

void ouro_ce_bwd(This *this, int gx) {
    const int rows = this->n0, V = this->n1, first = this->n2;
    if (gx >= rows) {
        return;
    }
    __global float *x = ouro_act(this, this->o0) + (size_t) gx * V;
    const int t = this->tgt[first + gx];
    const float g = t >= 0 ? ouro_act(this, this->o3)[first + gx] : 0.0f;
    const float l = ouro_act(this, this->o1)[first + gx];
    const int full = V & ~15;
    for (int j = 0; j < full; j += 16) {
        vstore16(g * exp(vload16(0, x + j) - l), 0, x + j);
    }
    for (int j = full; j < V; j++) {
        x[j] = g * exp(x[j] - l);
    }
    if (t >= 0) {
        x[t] -= g;
    }
}
