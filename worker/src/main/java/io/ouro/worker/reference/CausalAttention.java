package io.ouro.worker.reference;

import io.ouro.worker.util.Parallel;

/**
 * Causal multi-head attention core: {@code out = softmax(q k^T / sqrt(hd) + causal) v} per sequence and
 * head. The probabilities are kept for the backward pass.
 */
final class CausalAttention {

    private CausalAttention() {
    }

    // q, k, v (B,S,H,hd) -> out (B,S,H,hd) overwritten, probs (B,H,S,S) lower triangle
    static void forward(float[] out, float[] probs, float[] q, float[] k, float[] v,
                        int batch, int seqLen, int heads, int hd) {
        int d = heads * hd;
        float scale = (float) (1.0 / Math.sqrt(hd));
        Parallel.range(batch * heads, Matmul.grain((long) seqLen * seqLen * hd), (p0, p1) -> {
            for (int p = p0; p < p1; p++) {
                int b = p / heads, h = p % heads;
                int pBase = p * seqLen * seqLen;
                for (int s = 0; s < seqLen; s++) {
                    int qi = (b * seqLen + s) * d + h * hd;
                    int pr = pBase + s * seqLen;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j <= s; j++) {
                        int ki = (b * seqLen + j) * d + h * hd;
                        float dot = 0;
                        for (int i = 0; i < hd; i++) {
                            dot += q[qi + i] * k[ki + i];
                        }
                        float sc = dot * scale;
                        probs[pr + j] = sc;
                        max = Math.max(max, sc);
                    }
                    double sum = 0;
                    for (int j = 0; j <= s; j++) {
                        float e = (float) Math.exp(probs[pr + j] - max);
                        probs[pr + j] = e;
                        sum += e;
                    }
                    float inv = (float) (1.0 / sum);
                    for (int i = 0; i < hd; i++) {
                        out[qi + i] = 0;
                    }
                    for (int j = 0; j <= s; j++) {
                        float pj = probs[pr + j] * inv;
                        probs[pr + j] = pj;
                        int vi = (b * seqLen + j) * d + h * hd;
                        for (int i = 0; i < hd; i++) {
                            out[qi + i] += pj * v[vi + i];
                        }
                    }
                }
            }
        });
    }

    // dout (B,S,H,hd) -> dq, dk, dv (B,S,H,hd) +=
    static void backward(float[] dq, float[] dk, float[] dv, float[] dout, float[] probs,
                         float[] q, float[] k, float[] v, int batch, int seqLen, int heads, int hd) {
        int d = heads * hd;
        float scale = (float) (1.0 / Math.sqrt(hd));
        Parallel.range(batch * heads, Matmul.grain(2L * seqLen * seqLen * hd), (p0, p1) -> {
            float[] dp = new float[seqLen];
            for (int p = p0; p < p1; p++) {
                int b = p / heads, h = p % heads;
                int pBase = p * seqLen * seqLen;
                for (int s = 0; s < seqLen; s++) {
                    int qi = (b * seqLen + s) * d + h * hd;
                    int pr = pBase + s * seqLen;
                    double rowDot = 0;
                    for (int j = 0; j <= s; j++) {
                        int vi = (b * seqLen + j) * d + h * hd;
                        float g = 0;
                        for (int i = 0; i < hd; i++) {
                            g += dout[qi + i] * v[vi + i];
                        }
                        dp[j] = g;
                        rowDot += probs[pr + j] * g;
                    }
                    float rd = (float) rowDot;
                    for (int j = 0; j <= s; j++) {
                        float pj = probs[pr + j];
                        float ds = pj * (dp[j] - rd) * scale;
                        int kj = (b * seqLen + j) * d + h * hd;
                        for (int i = 0; i < hd; i++) {
                            dq[qi + i] += ds * k[kj + i];
                            dk[kj + i] += ds * q[qi + i];
                            dv[kj + i] += pj * dout[qi + i];
                        }
                    }
                }
            }
        });
    }
}
