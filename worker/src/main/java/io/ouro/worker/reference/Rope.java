package io.ouro.worker.reference;

import io.ouro.worker.util.Parallel;

/**
 * Rotary position embedding in HF's "rotate_half" layout: element i of a head is paired with element
 * i + hd/2 and rotated by angle {@code pos * base^(-2i/hd)}. Positions restart at 0 for each sequence
 * and are the same at every recurrent step.
 */
public final class Rope {

    private Rope() {
    }

    // cos, sin (S, hd/2); angles computed in float as HF does (the OpenCL backend uploads these tables)
    public static void tables(float[] cos, float[] sin, int seqLen, int hd, double base) {
        int half = hd / 2;
        for (int i = 0; i < half; i++) {
            float invFreq = (float) (1.0 / Math.pow(base, (2.0 * i) / hd));
            for (int s = 0; s < seqLen; s++) {
                float angle = s * invFreq;
                cos[s * half + i] = (float) Math.cos(angle);
                sin[s * half + i] = (float) Math.sin(angle);
            }
        }
    }

    // x (N,H,hd) rotated in place; row n is at position n % seqLen
    static void forward(float[] x, float[] cos, float[] sin, int n, int seqLen, int heads, int hd) {
        rotate(x, cos, sin, n, seqLen, heads, hd, 1);
    }

    // dx (N,H,hd) in place: the transpose of the forward rotation
    static void backward(float[] dx, float[] cos, float[] sin, int n, int seqLen, int heads, int hd) {
        rotate(dx, cos, sin, n, seqLen, heads, hd, -1);
    }

    private static void rotate(float[] x, float[] cos, float[] sin, int n, int seqLen, int heads, int hd, int sign) {
        int half = hd / 2, d = heads * hd;
        Parallel.range(n, Matmul.grain(3L * d), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int t = (r % seqLen) * half;
                for (int h = 0; h < heads; h++) {
                    int base = r * d + h * hd;
                    for (int i = 0; i < half; i++) {
                        float c = cos[t + i], s = sign * sin[t + i];
                        float a = x[base + i], b = x[base + half + i];
                        x[base + i] = a * c - b * s;
                        x[base + half + i] = b * c + a * s;
                    }
                }
            }
        });
    }
}
