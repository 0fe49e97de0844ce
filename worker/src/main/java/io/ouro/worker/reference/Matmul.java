package io.ouro.worker.reference;

import io.ouro.worker.util.Parallel;

/**
 * Linear projection without bias, weights stored HF-style {@code [out, in]}.
 * Forward is blocked over output columns so a tile of weight rows stays in cache for all input rows;
 * the backward passes use row-contiguous axpy loops that the JIT vectorises.
 */
final class Matmul {

    private static final int COL_BLOCK = 64;
    private static final long PARALLEL_WORK = 1 << 15;

    private Matmul() {
    }

    // out (N,O) = x (N,I) . w (O,I)^T   (out is overwritten)
    static void forward(float[] out, int outOff, float[] x, int xOff, float[] w, int wOff, int n, int in, int o) {
        int blocks = (o + COL_BLOCK - 1) / COL_BLOCK;
        Parallel.range(blocks, grain(n * (long) in * COL_BLOCK), (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                int c0 = b * COL_BLOCK, c1 = Math.min(o, c0 + COL_BLOCK);
                forwardTile(out, outOff, x, xOff, w, wOff, n, in, o, c0, c1);
            }
        });
    }

    private static void forwardTile(float[] out, int outOff, float[] x, int xOff, float[] w, int wOff,
                                    int n, int in, int o, int c0, int c1) {
        int r = 0;
        for (; r + 4 <= n; r += 4) {
            int x0 = xOff + r * in, x1 = x0 + in, x2 = x1 + in, x3 = x2 + in;
            for (int c = c0; c < c1; c++) {
                int wr = wOff + c * in;
                float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (int i = 0; i < in; i++) {
                    float wi = w[wr + i];
                    s0 += x[x0 + i] * wi;
                    s1 += x[x1 + i] * wi;
                    s2 += x[x2 + i] * wi;
                    s3 += x[x3 + i] * wi;
                }
                int oi = outOff + r * o + c;
                out[oi] = s0;
                out[oi + o] = s1;
                out[oi + 2 * o] = s2;
                out[oi + 3 * o] = s3;
            }
        }
        for (; r < n; r++) {
            int xr = xOff + r * in;
            for (int c = c0; c < c1; c++) {
                int wr = wOff + c * in;
                float s = 0;
                for (int i = 0; i < in; i++) {
                    s += x[xr + i] * w[wr + i];
                }
                out[outOff + r * o + c] = s;
            }
        }
    }

    // dx (N,I) += dout (N,O) . w (O,I)
    static void backwardInput(float[] dx, int dxOff, float[] dout, int doutOff, float[] w, int wOff,
                              int n, int in, int o) {
        int quads = (n + 3) / 4;
        Parallel.range(quads, grain(4L * in * o), (q0, q1) -> {
            for (int q = q0; q < q1; q++) {
                int r0 = 4 * q, rows = Math.min(4, n - r0);
                if (rows == 4) {
                    int d0 = dxOff + r0 * in, d1 = d0 + in, d2 = d1 + in, d3 = d2 + in;
                    int g0 = doutOff + r0 * o, g1 = g0 + o, g2 = g1 + o, g3 = g2 + o;
                    for (int c = 0; c < o; c++) {
                        float a0 = dout[g0 + c], a1 = dout[g1 + c], a2 = dout[g2 + c], a3 = dout[g3 + c];
                        int wr = wOff + c * in;
                        for (int i = 0; i < in; i++) {
                            float wi = w[wr + i];
                            dx[d0 + i] += a0 * wi;
                            dx[d1 + i] += a1 * wi;
                            dx[d2 + i] += a2 * wi;
                            dx[d3 + i] += a3 * wi;
                        }
                    }
                } else {
                    for (int r = r0; r < r0 + rows; r++) {
                        int dr = dxOff + r * in, gr = doutOff + r * o;
                        for (int c = 0; c < o; c++) {
                            float g = dout[gr + c];
                            int wr = wOff + c * in;
                            for (int i = 0; i < in; i++) {
                                dx[dr + i] += g * w[wr + i];
                            }
                        }
                    }
                }
            }
        });
    }

    // dw (O,I) += dout (N,O)^T . x (N,I)
    static void backwardWeight(float[] dw, int dwOff, float[] dout, int doutOff, float[] x, int xOff,
                               int n, int in, int o) {
        int quads = (o + 3) / 4;
        Parallel.range(quads, grain(4L * in * n), (q0, q1) -> {
            for (int q = q0; q < q1; q++) {
                int c0 = 4 * q, cols = Math.min(4, o - c0);
                if (cols == 4) {
                    int w0 = dwOff + c0 * in, w1 = w0 + in, w2 = w1 + in, w3 = w2 + in;
                    for (int r = 0; r < n; r++) {
                        int gr = doutOff + r * o + c0;
                        float a0 = dout[gr], a1 = dout[gr + 1], a2 = dout[gr + 2], a3 = dout[gr + 3];
                        int xr = xOff + r * in;
                        for (int i = 0; i < in; i++) {
                            float xi = x[xr + i];
                            dw[w0 + i] += a0 * xi;
                            dw[w1 + i] += a1 * xi;
                            dw[w2 + i] += a2 * xi;
                            dw[w3 + i] += a3 * xi;
                        }
                    }
                } else {
                    for (int c = c0; c < c0 + cols; c++) {
                        int wr = dwOff + c * in;
                        for (int r = 0; r < n; r++) {
                            float g = dout[doutOff + r * o + c];
                            int xr = xOff + r * in;
                            for (int i = 0; i < in; i++) {
                                dw[wr + i] += g * x[xr + i];
                            }
                        }
                    }
                }
            }
        });
    }

    /** Indices per task so that each task does at least {@link #PARALLEL_WORK} multiply-adds. */
    static int grain(long workPerIndex) {
        return (int) Math.max(1, PARALLEL_WORK / Math.max(1, workPerIndex));
    }
}
