package io.ouro.worker.reference;

/**
 * The forward ops on one token's row, for decoding with a KV cache ({@code io.ouro.worker.infer}): the reference
 * kernels called with one row, and the one new kernel decoding needs, attention of one query over cached keys and
 * values plus its own. Arrays hold the row at offset 0 unless an offset is given.
 */
public final class RowOps {

    private RowOps() {
    }

    // h (D) = table[token]
    public static void embed(float[] h, float[] table, int tOff, int token, int d) {
        Embedding.forward(h, table, tOff, new int[] {token}, 1, d);
    }

    // y (O) = x (I) . w (O,I)^T
    public static void linear(float[] y, float[] x, float[] w, int wOff, int in, int out) {
        Matmul.forward(y, 0, x, 0, w, wOff, 1, in, out);
    }

    // y (D) = x / rms(x) * w
    public static void rmsnorm(float[] y, float[] x, float[] w, int wOff, int d, float eps) {
        RmsNorm.forward(y, new float[1], x, w, wOff, 1, d, eps);
    }

    // m = silu(g) * u, count elements
    public static void swiglu(float[] m, float[] g, float[] u, int count) {
        SwiGlu.forward(m, g, u, count);
    }

    // x (H,hd) rotated in place to the position whose table rows cos, sin (hd/2) are
    public static void ropeAt(float[] x, float[] cos, float[] sin, int heads, int hd) {
        Rope.forward(x, cos, sin, 1, 1, heads, hd);
    }

    public static double sigmoid(double z) {
        return ExitObjective.sigmoid(z);
    }

    /**
     * out (H,hd) = softmax(q k^T / sqrt(hd)) v for one query q (H,hd) over the rows [0, len) of the caches kc, vc
     * (len, H*hd) followed by its own key and value: causal attention's row for the newest position, with the same
     * order of operations as {@code CausalAttention.forward}.
     */
    public static void attendCached(float[] out, float[] q, float[] kc, float[] vc, int len, float[] kSelf,
                                    float[] vSelf, int heads, int hd) {
        int d = heads * hd;
        float scale = (float) (1.0 / Math.sqrt(hd));
        float[] p = new float[len + 1];
        for (int h = 0; h < heads; h++) {
            int hq = h * hd;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j <= len; j++) {
                float[] k = j < len ? kc : kSelf;
                int ki = j < len ? j * d + hq : hq;
                float dot = 0;
                for (int i = 0; i < hd; i++) {
                    dot += q[hq + i] * k[ki + i];
                }
                p[j] = dot * scale;
                max = Math.max(max, p[j]);
            }
            double sum = 0;
            for (int j = 0; j <= len; j++) {
                float e = (float) Math.exp(p[j] - max);
                p[j] = e;
                sum += e;
            }
            float inv = (float) (1.0 / sum);
            for (int i = 0; i < hd; i++) {
                out[hq + i] = 0;
            }
            for (int j = 0; j <= len; j++) {
                float pj = p[j] * inv;
                float[] v = j < len ? vc : vSelf;
                int vi = j < len ? j * d + hq : hq;
                for (int i = 0; i < hd; i++) {
                    out[hq + i] += pj * v[vi + i];
                }
            }
        }
    }
}
