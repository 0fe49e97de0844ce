package io.ouro.worker.opencl;

/**
 * Causal attention of {@link LoopKernel}, forward and backward, memory-efficient: only each query row's log-sum-exp is
 * kept for the backward (lse, B*H*S floats), never the S x S probabilities. q, k, v, out and their gradients are
 * (batch, seqLen, heads, hd) in the activations. Each setter runs the kernel it is given: the translated body here
 * ({@code ATTN_*}), its CPU-shaped hand-written twin in gemm.cl ({@code CL_ATTN_*}: a work item per
 * {@link ClKernels#ATTN_QUERIES} queries or keys) or the GPU-shaped one in flash.cl ({@code CL_FLASH_*}: a work-group
 * per {@link ClKernels#FLASH_ROWS} queries or keys). All read the same registers.
 */
abstract class AttentionKernels extends LayerKernels {

    /** out = softmax(q k^T * scale, causal) v, and lse per row. */
    final void setAttentionForward(int out, int lse, int q, int k, int v, int batch, int seqLen, int heads, int hd,
                                   DeviceOp kernel) {
        begin(kernel);
        attentionRegisters(q, k, v, lse, out, 0, 0, 0, 0, batch, seqLen, heads, hd);
    }

    /**
     * One pass of the backward, with the probabilities recomputed from q, k and lse (dS = P (dout . v - dout . out) *
     * scale): {@code pass} the dq kernel (dq += dS k) or the dk/dv kernel (dk += dS^T q, dv += P^T dout).
     */
    final void setAttentionBackward(int dq, int dk, int dv, int dout, int out, int lse, int q, int k, int v,
                                    int batch, int seqLen, int heads, int hd, DeviceOp pass) {
        begin(pass);
        attentionRegisters(q, k, v, lse, dout, dq, out, dk, dv, batch, seqLen, heads, hd);
    }

    // the registers gemm.cl's and flash.cl's attention reads as well: q o0, k o1, v o2, lse o3, out (forward) or dout o4, dq o5,
    // out (backward) o6, dk o7, dv o8; batch n0, seqLen n1, heads n2, hd n3, scale f0
    private void attentionRegisters(int q, int k, int v, int lse, int outOrDout, int dq, int out, int dk, int dv,
                                    int batch, int seqLen, int heads, int hd) {
        o0 = q;
        o1 = k;
        o2 = v;
        o3 = lse;
        o4 = outOrDout;
        o5 = dq;
        o6 = out;
        o7 = dk;
        o8 = dv;
        n0 = batch;
        n1 = seqLen;
        n2 = heads;
        n3 = hd;
        f0 = (float) (1.0 / Math.sqrt(hd));
    }

    // per (sequence b, head h, query s) one pass over the keys with an online softmax
    void attentionForward(int gx) {
        if (gx < n0 * n2 * n1) {
            int s = gx % n1;
            int p = gx / n1;
            int b = p / n2;
            int h = p % n2;
            int d = n2 * n3;
            int qi = (b * n1 + s) * d + h * n3;
            for (int i = 0; i < n3; i++) {
                aw(o4 + qi + i, 0f);
            }
            float mx = -3.0e38f;
            float l = 0f;
            for (int j = 0; j <= s; j++) {
                int kj = (b * n1 + j) * d + h * n3;
                float dot = 0f;
                for (int i = 0; i < n3; i++) {
                    dot += ar(o0 + qi + i) * ar(o1 + kj + i);
                }
                float sc = dot * f0;
                float mNew = max(mx, sc);
                float corr = exp(mx - mNew);
                float e = exp(sc - mNew);
                l = l * corr + e;
                for (int i = 0; i < n3; i++) {
                    aw(o4 + qi + i, ar(o4 + qi + i) * corr + e * ar(o2 + kj + i));
                }
                mx = mNew;
            }
            for (int i = 0; i < n3; i++) {
                aw(o4 + qi + i, ar(o4 + qi + i) / l);
            }
            aw(o3 + p * n1 + s, mx + log(l));
        }
    }

    // per (b, h, query s)
    void attentionBackwardQ(int gx) {
        if (gx < n0 * n2 * n1) {
            int s = gx % n1;
            int p = gx / n1;
            int b = p / n2;
            int h = p % n2;
            int d = n2 * n3;
            int qi = (b * n1 + s) * d + h * n3;
            float lse = ar(o3 + p * n1 + s);
            float dd = 0f;
            for (int i = 0; i < n3; i++) {
                dd += ar(o4 + qi + i) * ar(o6 + qi + i);
            }
            for (int j = 0; j <= s; j++) {
                int kj = (b * n1 + j) * d + h * n3;
                float dot = 0f;
                float g = 0f;
                for (int i = 0; i < n3; i++) {
                    dot += ar(o0 + qi + i) * ar(o1 + kj + i);
                    g += ar(o4 + qi + i) * ar(o2 + kj + i);
                }
                float pj = exp(dot * f0 - lse);
                float ds = pj * (g - dd) * f0;
                for (int i = 0; i < n3; i++) {
                    aw(o5 + qi + i, ar(o5 + qi + i) + ds * ar(o1 + kj + i));
                }
            }
        }
    }

    // per (b, h, key j)
    void attentionBackwardKv(int gx) {
        if (gx < n0 * n2 * n1) {
            int j = gx % n1;
            int p = gx / n1;
            int b = p / n2;
            int h = p % n2;
            int d = n2 * n3;
            int kj = (b * n1 + j) * d + h * n3;
            for (int s = j; s < n1; s++) {
                int qi = (b * n1 + s) * d + h * n3;
                float dot = 0f;
                float g = 0f;
                float dd = 0f;
                for (int i = 0; i < n3; i++) {
                    dot += ar(o0 + qi + i) * ar(o1 + kj + i);
                    g += ar(o4 + qi + i) * ar(o2 + kj + i);
                    dd += ar(o4 + qi + i) * ar(o6 + qi + i);
                }
                float pj = exp(dot * f0 - ar(o3 + p * n1 + s));
                float ds = pj * (g - dd) * f0;
                for (int i = 0; i < n3; i++) {
                    aw(o7 + kj + i, ar(o7 + kj + i) + ds * ar(o0 + qi + i));
                    aw(o8 + kj + i, ar(o8 + kj + i) + pj * ar(o4 + qi + i));
                }
            }
        }
    }
}
