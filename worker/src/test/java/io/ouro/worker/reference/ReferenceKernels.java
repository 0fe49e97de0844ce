package io.ouro.worker.reference;

/**
 * The plain-Java ops that the OpenCL kernel tests (package {@code io.ouro.worker.opencl}) compare against.
 * Those ops are package-private in {@code reference}; this test-side class shares the package and passes
 * them through unchanged, so the main code keeps its narrow visibility.
 */
public final class ReferenceKernels {

    private ReferenceKernels() {
    }

    // out (N,O) = x (N,I) . w (O,I)^T   (out is overwritten)
    public static void matmulForward(float[] out, int outOff, float[] x, int xOff, float[] w, int wOff,
                                     int n, int in, int o) {
        Matmul.forward(out, outOff, x, xOff, w, wOff, n, in, o);
    }

    // dx (N,I) += dout (N,O) . w (O,I)
    public static void matmulBackwardInput(float[] dx, int dxOff, float[] dout, int doutOff, float[] w, int wOff,
                                           int n, int in, int o) {
        Matmul.backwardInput(dx, dxOff, dout, doutOff, w, wOff, n, in, o);
    }

    // dw (O,I) += dout (N,O)^T . x (N,I)
    public static void matmulBackwardWeight(float[] dw, int dwOff, float[] dout, int doutOff, float[] x, int xOff,
                                            int n, int in, int o) {
        Matmul.backwardWeight(dw, dwOff, dout, doutOff, x, xOff, n, in, o);
    }

    // dout (N,D) -> dtable (V,D) at tOff +=, rows of the same token in row order
    public static void embeddingBackward(float[] dtable, int tOff, float[] dout, int[] tokens, int n, int d) {
        Embedding.backward(dtable, tOff, dout, tokens, n, d);
    }

    // x (N,D) -> y (N,D) overwritten, rstd (N) = 1/sqrt(mean(x^2)+eps)
    public static void rmsnormForward(float[] y, float[] rstd, float[] x, float[] w, int wOff, int n, int d,
                                      float eps) {
        RmsNorm.forward(y, rstd, x, w, wOff, n, d, eps);
    }

    // dy (N,D) -> dx (N,D), dw (D) +=
    public static void rmsnormBackward(float[] dx, float[] dw, int dwOff, float[] dy, float[] x, float[] rstd,
                                       float[] w, int wOff, int n, int d) {
        RmsNorm.backward(dx, dw, dwOff, dy, x, rstd, w, wOff, n, d);
    }

    // g, u (N,F) -> m (N,F) overwritten; count = N*F
    public static void swigluForward(float[] m, float[] g, float[] u, int count) {
        SwiGlu.forward(m, g, u, count);
    }

    // dm (N,F) -> dg, du (N,F) +=
    public static void swigluBackward(float[] dg, float[] du, float[] dm, float[] g, float[] u, int count) {
        SwiGlu.backward(dg, du, dm, g, u, count);
    }

    // x (N,H,hd) rotated in place; row n is at position n % seqLen
    public static void ropeForward(float[] x, float[] cos, float[] sin, int n, int seqLen, int heads, int hd) {
        Rope.forward(x, cos, sin, n, seqLen, heads, hd);
    }

    // dx (N,H,hd) in place: the transpose of the forward rotation
    public static void ropeBackward(float[] dx, float[] cos, float[] sin, int n, int seqLen, int heads, int hd) {
        Rope.backward(dx, cos, sin, n, seqLen, heads, hd);
    }

    // q, k, v (B,S,H,hd) -> out (B,S,H,hd) overwritten, probs (B,H,S,S) lower triangle
    public static void attentionForward(float[] out, float[] probs, float[] q, float[] k, float[] v,
                                        int batch, int seqLen, int heads, int hd) {
        CausalAttention.forward(out, probs, q, k, v, batch, seqLen, heads, hd);
    }

    // dout (B,S,H,hd) -> dq, dk, dv (B,S,H,hd) +=
    public static void attentionBackward(float[] dq, float[] dk, float[] dv, float[] dout, float[] probs,
                                         float[] q, float[] k, float[] v, int batch, int seqLen, int heads, int hd) {
        CausalAttention.backward(dq, dk, dv, dout, probs, q, k, v, batch, seqLen, heads, hd);
    }
}
