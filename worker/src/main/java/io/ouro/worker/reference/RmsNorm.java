package io.ouro.worker.reference;

import io.ouro.worker.util.Parallel;

/** RMSNorm: {@code y = x / sqrt(mean(x^2) + eps) * w}, as HF Ouro computes it (no mean subtraction). */
final class RmsNorm {

    private RmsNorm() {
    }

    // x (N,D) -> y (N,D) overwritten, rstd (N) = 1/sqrt(mean(x^2)+eps)
    static void forward(float[] y, float[] rstd, float[] x, float[] w, int wOff, int n, int d, float eps) {
        forward(y, 0, rstd, 0, x, 0, w, wOff, n, d, eps);
    }

    // the same on rows that start at the given offsets
    static void forward(float[] y, int yOff, float[] rstd, int rOff, float[] x, int xOff, float[] w, int wOff,
                        int n, int d, float eps) {
        Parallel.range(n, Matmul.grain(4L * d), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int xr = xOff + r * d, yr = yOff + r * d;
                double ss = 0;
                for (int i = 0; i < d; i++) {
                    ss += x[xr + i] * x[xr + i];
                }
                float rs = (float) (1.0 / Math.sqrt(ss / d + eps));
                rstd[rOff + r] = rs;
                for (int i = 0; i < d; i++) {
                    y[yr + i] = x[xr + i] * rs * w[wOff + i];
                }
            }
        });
    }

    // dy (N,D) -> dx (N,D) +=, dw (D) += (skipped when dw is null: frozen weights)
    static void backward(float[] dx, float[] dw, int dwOff, float[] dy, float[] x, float[] rstd,
                         float[] w, int wOff, int n, int d) {
        backward(dx, 0, dw, dwOff, dy, 0, x, 0, rstd, 0, w, wOff, n, d);
    }

    // the same on rows that start at the given offsets
    static void backward(float[] dx, int dxOff, float[] dw, int dwOff, float[] dy, int dyOff, float[] x, int xOff,
                         float[] rstd, int rOff, float[] w, int wOff, int n, int d) {
        Parallel.range(n, Matmul.grain(6L * d), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int xr = xOff + r * d, yr = dyOff + r * d, dr = dxOff + r * d;
                float rs = rstd[rOff + r];
                double dot = 0;
                for (int i = 0; i < d; i++) {
                    dot += dy[yr + i] * w[wOff + i] * x[xr + i];
                }
                float c = (float) (dot * rs * rs * rs / d);
                for (int i = 0; i < d; i++) {
                    dx[dr + i] += rs * w[wOff + i] * dy[yr + i] - c * x[xr + i];
                }
            }
        });
        if (dw != null) {
            // serial over rows so the sum order never changes
            for (int r = 0; r < n; r++) {
                int xr = xOff + r * d, yr = dyOff + r * d;
                float rs = rstd[rOff + r];
                for (int i = 0; i < d; i++) {
                    dw[dwOff + i] += dy[yr + i] * x[xr + i] * rs;
                }
            }
        }
    }
}
