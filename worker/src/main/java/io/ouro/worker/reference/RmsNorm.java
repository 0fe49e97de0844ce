package io.ouro.worker.reference;

import io.ouro.worker.util.Parallel;

/** RMSNorm: {@code y = x / sqrt(mean(x^2) + eps) * w}, as HF Ouro computes it (no mean subtraction). */
final class RmsNorm {

    private RmsNorm() {
    }

    // x (N,D), w (D) -> y (N,D) overwritten, rstd (N) = 1/sqrt(mean(x^2)+eps)
    static void forward(float[] y, float[] rstd, float[] x, float[] w, int wOff, int n, int d, float eps) {
        Parallel.range(n, Matmul.grain(4L * d), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int row = r * d;
                double ss = 0;
                for (int i = 0; i < d; i++) {
                    ss += x[row + i] * x[row + i];
                }
                float rs = (float) (1.0 / Math.sqrt(ss / d + eps));
                rstd[r] = rs;
                for (int i = 0; i < d; i++) {
                    y[row + i] = x[row + i] * rs * w[wOff + i];
                }
            }
        });
    }

    // dy (N,D) -> dx (N,D) +=, dw (D) += (skipped when dw is null: frozen weights)
    static void backward(float[] dx, float[] dw, int dwOff, float[] dy, float[] x, float[] rstd,
                         float[] w, int wOff, int n, int d) {
        Parallel.range(n, Matmul.grain(6L * d), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int row = r * d;
                float rs = rstd[r];
                double dot = 0;
                for (int i = 0; i < d; i++) {
                    dot += dy[row + i] * w[wOff + i] * x[row + i];
                }
                float c = (float) (dot * rs * rs * rs / d);
                for (int i = 0; i < d; i++) {
                    dx[row + i] += rs * w[wOff + i] * dy[row + i] - c * x[row + i];
                }
            }
        });
        if (dw != null) {
            // serial over rows so the sum order never changes
            for (int r = 0; r < n; r++) {
                int row = r * d;
                float rs = rstd[r];
                for (int i = 0; i < d; i++) {
                    dw[dwOff + i] += dy[row + i] * x[row + i] * rs;
                }
            }
        }
    }
}
