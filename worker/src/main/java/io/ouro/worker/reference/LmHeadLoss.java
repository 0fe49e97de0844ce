package io.ouro.worker.reference;

import io.ouro.worker.util.Parallel;

/**
 * The shared LM head fused with next-token cross-entropy. Logits are produced a block of rows at a
 * time into a scratch buffer, so the full (N,V) matrix exists only when the caller asks to keep it;
 * the backward pass recomputes each block from the saved log-sum-exp.
 */
final class LmHeadLoss {

    private LmHeadLoss() {
    }

    /** Rows per block, chosen so a block of logits stays near 16M elements. */
    static int blockRows(int n, int vocab) {
        return Math.max(1, Math.min(n, Math.max(64, (1 << 24) / vocab)));
    }

    // h (N,D), w (V,D), targets (N) -> ce (N), lse (N); keep (N,V) gets the logits when not null.
    // scratch holds block*V elements.
    static void forward(float[] ce, int ceOff, float[] lse, int lseOff, float[] keep, float[] scratch, int block,
                        float[] h, float[] w, int wOff, int[] targets, int n, int d, int vocab) {
        for (int r0 = 0; r0 < n; r0 += block) {
            int rows = Math.min(block, n - r0);
            int first = r0;
            Matmul.forward(scratch, 0, h, r0 * d, w, wOff, rows, d, vocab);
            Parallel.range(rows, Matmul.grain(3L * vocab), (a, b) -> {
                for (int r = a; r < b; r++) {
                    int row = r * vocab;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < vocab; j++) {
                        max = Math.max(max, scratch[row + j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < vocab; j++) {
                        sum += Math.exp(scratch[row + j] - max);
                    }
                    float l = (float) (max + Math.log(sum));
                    int n0 = first + r;
                    lse[lseOff + n0] = l;
                    int t = targets[n0];
                    ce[ceOff + n0] = t < 0 ? 0 : l - scratch[row + t];
                }
            });
            if (keep != null) {
                System.arraycopy(scratch, 0, keep, r0 * vocab, rows * vocab);
            }
        }
    }

    // dce (N): d loss / d CE per row -> dh (N,D) +=, dw (V,D) += (dw skipped when null)
    static void backward(float[] dh, float[] dw, int dwOff, float[] dce, int dceOff, float[] lse, int lseOff,
                         float[] scratch, int block, float[] h, float[] w, int wOff, int[] targets,
                         int n, int d, int vocab) {
        for (int r0 = 0; r0 < n; r0 += block) {
            int rows = Math.min(block, n - r0);
            int first = r0;
            Matmul.forward(scratch, 0, h, r0 * d, w, wOff, rows, d, vocab);
            Parallel.range(rows, Matmul.grain(2L * vocab), (a, b) -> {
                for (int r = a; r < b; r++) {
                    int row = r * vocab;
                    int n0 = first + r;
                    int t = targets[n0];
                    float g = t < 0 ? 0 : dce[dceOff + n0];
                    float l = lse[lseOff + n0];
                    for (int j = 0; j < vocab; j++) {
                        scratch[row + j] = g * (float) Math.exp(scratch[row + j] - l);
                    }
                    if (t >= 0) {
                        scratch[row + t] -= g;
                    }
                }
            });
            Matmul.backwardInput(dh, r0 * d, scratch, 0, w, wOff, rows, d, vocab);
            if (dw != null) {
                Matmul.backwardWeight(dw, dwOff, scratch, 0, h, r0 * d, rows, d, vocab);
            }
        }
    }
}
