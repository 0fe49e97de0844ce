package io.ouro.worker.reference;

import io.ouro.worker.util.Parallel;

/**
 * Linear projection without bias, weights stored HF-style {@code [out, in]}. All three products
 * (forward, input gradient, weight gradient) run through one row-by-row dot-product kernel,
 * {@link #dotRows}; the backward passes transpose their operands first, which costs O(N*O + N*I)
 * against the O(N*O*I) product. The kernel is SIMD ({@link VectorDot}) when the JVM has the incubating
 * Vector API, and the plain loop below otherwise, which is also the reference the SIMD one is tested
 * against.
 */
final class Matmul {

    private static final long PARALLEL_WORK = 1 << 15;
    static final boolean SIMD = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();

    static {
        if (!SIMD) {
            System.getLogger(Matmul.class.getName()).log(System.Logger.Level.WARNING,
                    "jdk.incubator.vector is not in this JVM: the reference backend's matmuls use the scalar "
                            + "loop (several times slower); add --add-modules=jdk.incubator.vector");
        }
    }

    private Matmul() {
    }

    // out (N,O) = x (N,I) . w (O,I)^T   (out is overwritten)
    static void forward(float[] out, int outOff, float[] x, int xOff, float[] w, int wOff, int n, int in, int o) {
        dotRows(out, outOff, x, xOff, w, wOff, n, in, o, false);
    }

    // dx (N,I) += dout (N,O) . w (O,I)
    static void backwardInput(float[] dx, int dxOff, float[] dout, int doutOff, float[] w, int wOff,
                              int n, int in, int o) {
        float[] wt = transpose(w, wOff, o, in);
        dotRows(dx, dxOff, dout, doutOff, wt, 0, n, o, in, true);
    }

    // dw (O,I) += dout (N,O)^T . x (N,I)
    static void backwardWeight(float[] dw, int dwOff, float[] dout, int doutOff, float[] x, int xOff,
                               int n, int in, int o) {
        float[] gt = transpose(dout, doutOff, n, o);
        float[] xt = transpose(x, xOff, n, in);
        dotRows(dw, dwOff, gt, 0, xt, 0, o, n, in, true);
    }

    // out (N,O) (= or +=) a (N,K) . b (O,K)^T
    static void dotRows(float[] out, int outOff, float[] a, int aOff, float[] b, int bOff,
                        int n, int k, int o, boolean accumulate) {
        if (SIMD) {
            VectorDot.dotRows(out, outOff, a, aOff, b, bOff, n, k, o, accumulate);
        } else {
            dotRowsScalar(out, outOff, a, aOff, b, bOff, n, k, o, accumulate);
        }
    }

    static void dotRowsScalar(float[] out, int outOff, float[] a, int aOff, float[] b, int bOff,
                              int n, int k, int o, boolean accumulate) {
        Parallel.range(n, grain((long) k * o), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int ar = aOff + r * k;
                for (int c = 0; c < o; c++) {
                    int br = bOff + c * k;
                    float s = 0;
                    for (int i = 0; i < k; i++) {
                        s += a[ar + i] * b[br + i];
                    }
                    int oi = outOff + r * o + c;
                    out[oi] = accumulate ? out[oi] + s : s;
                }
            }
        });
    }

    // m (R,C) -> (C,R), a fresh array; 32x32 tiles keep both sides in cache
    static float[] transpose(float[] m, int off, int rows, int cols) {
        float[] t = new float[rows * cols];
        int tile = 32, rowTiles = (rows + tile - 1) / tile;
        Parallel.range(rowTiles, grain((long) tile * cols), (a, b) -> {
            for (int r0 = a * tile; r0 < Math.min(rows, b * tile); r0 += tile) {
                int r1 = Math.min(rows, r0 + tile);
                for (int c0 = 0; c0 < cols; c0 += tile) {
                    int c1 = Math.min(cols, c0 + tile);
                    for (int r = r0; r < r1; r++) {
                        for (int c = c0; c < c1; c++) {
                            t[c * rows + r] = m[off + r * cols + c];
                        }
                    }
                }
            }
        });
        return t;
    }

    /** Indices per task so that each task does at least {@link #PARALLEL_WORK} multiply-adds. */
    static int grain(long workPerIndex) {
        return (int) Math.max(1, PARALLEL_WORK / Math.max(1, workPerIndex));
    }
}
