package io.ouro.worker.opencl;

/**
 * Decoding one token over a KV cache ({@link OpenClDecodeOps}): one row at a time, every vector in the activations.
 * The hand-written twins are in decode.cl: the GEMV ({@code hand}), the fused loop step and the cache rows.
 */
abstract class DecodeKernels extends OptimizerKernels {

    /** One row x (heads x hd) rotated forward in place to position pos of the rope tables. */
    final void setRopeAt(int x, int pos, int heads, int hd) {
        begin(DeviceOp.ROPE_AT);
        o0 = x;
        n0 = pos;
        n1 = heads;
        n2 = hd;
    }

    void ropeAt(int gx) {
        int pairs = n2 / 2;
        if (gx < n1 * pairs) {
            int i = gx % pairs;
            int h = gx / pairs;
            int t = n0 * pairs + i;
            float c = ropeCos[t];
            float s = ropeSin[t];
            int base = o0 + h * n2;
            float a = ar(base + i);
            float b = ar(base + pairs + i);
            aw(base + i, a * c - b * s);
            aw(base + pairs + i, b * c + a * s);
        }
    }

    /**
     * out (heads x hd) = attention of the query q over rows [0, len) of the cached keys kc / values vc (rows of
     * heads*hd) and then its own key kSelf / value vSelf; heads x (len + 1) floats of score scratch at scores.
     */
    final void setAttendCached(int out, int q, int kc, int vc, int len, int kSelf, int vSelf, int heads, int hd,
                               int scores) {
        begin(DeviceOp.ATTN_CACHED);
        o0 = q;
        o1 = kc;
        o2 = vc;
        o3 = kSelf;
        o4 = vSelf;
        o5 = out;
        o6 = scores;
        n0 = len;
        n2 = heads;
        n3 = hd;
        f0 = (float) (1.0 / Math.sqrt(hd));
    }

    // one work item per head: the scaled scores once into the scratch, then max, sum and weighted values over them,
    // in the order of RowOps.attendCached
    void attendCached(int gx) {
        if (gx < n2) {
            int d = n2 * n3;
            int hq = gx * n3;
            int sb = o6 + gx * (n0 + 1);
            float mx = -3.0e38f;
            for (int j = 0; j <= n0; j++) {
                int kb = o1 + j * d + hq;
                if (j == n0) {
                    kb = o3 + hq;
                }
                float dot = 0f;
                for (int i = 0; i < n3; i++) {
                    dot += ar(o0 + hq + i) * ar(kb + i);
                }
                aw(sb + j, dot * f0);
                mx = max(mx, ar(sb + j));
            }
            float sum = 0f;
            for (int j = 0; j <= n0; j++) {
                sum += exp(ar(sb + j) - mx);
            }
            float inv = 1f / sum;
            for (int i = 0; i < n3; i++) {
                aw(o5 + hq + i, 0f);
            }
            for (int j = 0; j <= n0; j++) {
                int vb = o2 + j * d + hq;
                if (j == n0) {
                    vb = o4 + hq;
                }
                float pj = exp(ar(sb + j) - mx) * inv;
                for (int i = 0; i < n3; i++) {
                    aw(o5 + hq + i, ar(o5 + hq + i) + pj * ar(vb + i));
                }
            }
        }
    }

    /** act[dst + i] = mean over j < sources of act[src + j * stride + i], i < count. */
    final void setMean(int dst, int src, int stride, int sources, int count) {
        begin(DeviceOp.MEAN);
        o0 = dst;
        o1 = src;
        n0 = count;
        n1 = sources;
        n2 = stride;
    }

    void mean(int gx) {
        for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
            float s = 0f;
            for (int j = 0; j < n1; j++) {
                s += ar(o1 + j * n2 + i);
            }
            aw(o0 + i, s / n1);
        }
    }

    /** metrics[dst + i] = act[src + i], i < count. */
    final void setToMetrics(int dst, int src, int count) {
        begin(DeviceOp.TO_METRICS);
        o0 = dst;
        o1 = src;
        n0 = count;
    }

    void toMetrics(int gx) {
        for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
            metrics[o0 + i] = ar(o1 + i);
        }
    }

    /** One row of width: y = x * rstd * w + r, w at wOff in parameter segment seg; rstd (one float) kept. */
    final void setRmsnormAdd(int y, int rstd, int x, int seg, int wOff, int r, int width, float eps) {
        begin(DeviceOp.RMSNORM_ADD);
        pseg = seg;
        o0 = x;
        o1 = y;
        o2 = rstd;
        o3 = wOff;
        o4 = r;
        n1 = width;
        f0 = eps;
    }

    void rmsnormAdd(int gx) {
        if (gx == 0) {
            float ss = 0f;
            for (int i = 0; i < n1; i++) {
                float x = ar(o0 + i);
                ss += x * x;
            }
            float rs = 1f / sqrt(ss / n1 + f0);
            aw(o2, rs);
            for (int i = 0; i < n1; i++) {
                aw(o1 + i, ar(o0 + i) * rs * pw(o3 + i) + ar(o4 + i));
            }
        }
    }

    /** y (out) = x (in) . w (out, in)^T for one row, w at wOff in parameter segment seg; one work item per output. */
    final void setGemv(int y, int x, int seg, int wOff, int in, int out, boolean hand) {
        begin(hand ? DeviceOp.CL_GEMV : DeviceOp.GEMV);
        pseg = seg;
        o0 = y;
        o1 = x;
        o2 = wOff;
        n0 = out;
        n1 = in;
    }

    void gemv(int gx) {
        if (gx < n0) {
            float s = 0f;
            int wr = o2 + gx * n1;
            for (int q = 0; q < n1; q++) {
                s += ar(o1 + q) * pw(wr + q);
            }
            aw(o0 + gx, s);
        }
    }

    /**
     * One loop step of one token in one work-group (decode.cl): {@link #phases} phases, a barrier after each. The
     * tensors' offsets are in the token buffer from tableAt; qkv, keys, slotStride, valuesDelta, gate and pos as
     * {@code OpenClDecodeOps.decodeStep} says.
     */
    final void setDecodeStep(int tableAt, int seg, int layers, int d, int heads, int ffn, int qkv, int keys,
                             int slotStride, int valuesDelta, int gate, int pos, float eps) {
        begin(DeviceOp.CL_DECODE_STEP);
        phases = layers * ClKernels.DECODE_PHASES + 1;
        pseg = seg;
        n0 = layers;
        n1 = d;
        n2 = heads;
        n3 = ffn;
        o0 = tableAt;
        o1 = qkv;
        o2 = keys;
        o3 = slotStride;
        o4 = valuesDelta;
        o5 = gate;
        o6 = pos;
        f0 = eps;
        f1 = (float) (1.0 / Math.sqrt(d / heads));
    }

    /** KV-cache rows (decode.cl): entries of 6 ints in the token buffer from tableAt, rows of d floats. */
    final void setStoreRows(int tableAt, int entries, int d) {
        begin(DeviceOp.CL_STORE_ROWS);
        o0 = tableAt;
        n0 = entries;
        n1 = d;
    }
}
