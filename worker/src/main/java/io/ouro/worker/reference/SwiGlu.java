package io.ouro.worker.reference;

import io.ouro.worker.util.Parallel;

/** The SwiGLU gate: {@code m = silu(g) * u}, {@code silu(g) = g * sigmoid(g)}. */
final class SwiGlu {

    private SwiGlu() {
    }

    // g, u (N,F) -> m (N,F) overwritten; count = N*F
    static void forward(float[] m, float[] g, float[] u, int count) {
        Parallel.range(count, 1 << 14, (i0, i1) -> {
            for (int i = i0; i < i1; i++) {
                float sg = (float) (1.0 / (1.0 + Math.exp(-g[i])));
                m[i] = g[i] * sg * u[i];
            }
        });
    }

    // dm (N,F) -> dg, du (N,F) +=
    static void backward(float[] dg, float[] du, float[] dm, float[] g, float[] u, int count) {
        Parallel.range(count, 1 << 14, (i0, i1) -> {
            for (int i = i0; i < i1; i++) {
                float sg = (float) (1.0 / (1.0 + Math.exp(-g[i])));
                float silu = g[i] * sg;
                du[i] += dm[i] * silu;
                dg[i] += dm[i] * u[i] * sg * (1 + g[i] * (1 - sg));
            }
        });
    }
}
