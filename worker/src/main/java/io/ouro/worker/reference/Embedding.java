package io.ouro.worker.reference;

/** Token embedding lookup. */
final class Embedding {

    private Embedding() {
    }

    // table (V,D), tokens (N) -> out (N,D) overwritten
    static void forward(float[] out, float[] table, int tOff, int[] tokens, int n, int d) {
        for (int r = 0; r < n; r++) {
            System.arraycopy(table, tOff + tokens[r] * d, out, r * d, d);
        }
    }

    // dout (N,D) -> dtable (V,D) += ; serial so repeated tokens always sum in the same order
    static void backward(float[] dtable, int tOff, float[] dout, int[] tokens, int n, int d) {
        for (int r = 0; r < n; r++) {
            int row = tOff + tokens[r] * d;
            for (int i = 0; i < d; i++) {
                dtable[row + i] += dout[r * d + i];
            }
        }
    }
}
