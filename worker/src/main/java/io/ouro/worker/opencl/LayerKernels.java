package io.ouro.worker.opencl;

/**
 * The layer's elementwise and row ops of {@link LoopKernel}: each a setter with named arguments and the body that
 * {@code run()} calls for work item gx. Offsets are global offsets into the activations unless a setter says otherwise.
 */
abstract class LayerKernels extends BufferAccess {

    /** buffer sel [off, off + count) = value (sel a {@link #SEL_ACT}-style selector). */
    final void setFill(int sel, int off, int count, float value) {
        begin(DeviceOp.FILL);
        cSel = sel;
        o0 = off;
        n0 = count;
        f0 = value;
    }

    void fill(int gx) {
        for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
            store(cSel, o0 + i, f0, 0);
        }
    }

    /** act[acc + i] += act[x + i], i < count. */
    final void setAdd(int acc, int x, int count) {
        begin(DeviceOp.ADD);
        o0 = acc;
        o1 = x;
        n0 = count;
    }

    void add(int gx) {
        for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
            aw(o0 + i, ar(o0 + i) + ar(o1 + i));
        }
    }

    /** m = silu(g) * u, count elements. */
    final void setSwigluForward(int m, int g, int u, int count) {
        begin(DeviceOp.SWIGLU_FWD);
        o0 = g;
        o1 = u;
        o2 = m;
        n0 = count;
    }

    void swigluForward(int gx) {
        for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
            float g = ar(o0 + i);
            aw(o2 + i, g * sigmoid(g) * ar(o1 + i));
        }
    }

    /** dm -> dg +=, du +=; from g and u, count elements. */
    final void setSwigluBackward(int dg, int du, int dm, int g, int u, int count) {
        begin(DeviceOp.SWIGLU_BWD);
        o0 = g;
        o1 = u;
        o2 = dm;
        o3 = dg;
        o4 = du;
        n0 = count;
    }

    void swigluBackward(int gx) {
        for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
            float g = ar(o0 + i);
            float sg = sigmoid(g);
            float dm = ar(o2 + i);
            aw(o4 + i, ar(o4 + i) + dm * g * sg);
            aw(o3 + i, ar(o3 + i) + dm * ar(o1 + i) * sg * (1f + g * (1f - sg)));
        }
    }

    /** rows of width: y = x * rstd * w, rstd kept per row; w at wOff in parameter segment seg. */
    final void setRmsnormForward(int y, int rstd, int x, int seg, int wOff, int rows, int width, float eps) {
        begin(DeviceOp.RMSNORM_FWD);
        pseg = seg;
        o0 = x;
        o1 = y;
        o2 = rstd;
        o3 = wOff;
        n0 = rows;
        n1 = width;
        f0 = eps;
    }

    void rmsnormForward(int gx) {
        if (gx < n0) {
            int row = gx * n1;
            float ss = 0f;
            for (int i = 0; i < n1; i++) {
                float x = ar(o0 + row + i);
                ss += x * x;
            }
            float rs = 1f / sqrt(ss / n1 + f0);
            aw(o2 + gx, rs);
            for (int i = 0; i < n1; i++) {
                aw(o1 + row + i, ar(o0 + row + i) * rs * pw(o3 + i));
            }
        }
    }

    /** dx += rs*w*dy - x*rs^3/width*sum(dy*w*x) per row; w at wOff in segment seg (a work item per row). */
    final void setRmsnormBackwardDx(int dx, int dy, int x, int rstd, int seg, int wOff, int rows, int width) {
        begin(DeviceOp.RMSNORM_BWD_DX);
        pseg = seg;
        o0 = x;
        o1 = dy;
        o2 = rstd;
        o3 = wOff;
        o4 = dx;
        n0 = rows;
        n1 = width;
    }

    void rmsnormBackwardDx(int gx) {
        if (gx < n0) {
            int row = gx * n1;
            float rs = ar(o2 + gx);
            float dot = 0f;
            for (int i = 0; i < n1; i++) {
                dot += ar(o1 + row + i) * pw(o3 + i) * ar(o0 + row + i);
            }
            float c = dot * rs * rs * rs / n1;
            for (int i = 0; i < n1; i++) {
                aw(o4 + row + i, ar(o4 + row + i) + rs * pw(o3 + i) * ar(o1 + row + i) - c * ar(o0 + row + i));
            }
        }
    }

    /** The weight gradient at dwOff of segment seg += sum over rows of dy*x*rstd (a work item per column, rows in order). */
    final void setRmsnormBackwardDw(int dwOff, int dy, int x, int rstd, int seg, int rows, int width) {
        begin(DeviceOp.RMSNORM_BWD_DW);
        pseg = seg;
        o0 = x;
        o1 = dy;
        o2 = rstd;
        o3 = dwOff;
        n0 = rows;
        n1 = width;
    }

    void rmsnormBackwardDw(int gx) {
        if (gx < n1) {
            float s = 0f;
            for (int r = 0; r < n0; r++) {
                s += ar(o1 + r * n1 + gx) * ar(o0 + r * n1 + gx) * ar(o2 + r);
            }
            gradAdd(o3 + gx, s);
        }
    }

    /**
     * The weight gradient's first pass on a GPU (reduce.cl): act[partials + b*width + c] = sum over the rows of block b
     * ({@link ClKernels#DW_ROWS} rows) of dy*x*rstd in column c; launched over (width, blocks).
     */
    final void setRmsnormDwPartial(int partials, int dy, int x, int rstd, int rows, int width) {
        begin(DeviceOp.CL_RMSNORM_DW_PARTIAL);
        o0 = x;
        o1 = dy;
        o2 = rstd;
        o4 = partials;
        n0 = rows;
        n1 = width;
    }

    /** Its second pass: the gradient at dwOff of segment seg += the blocks' partials of each column, in block order. */
    final void setRmsnormDwSum(int dwOff, int seg, int partials, int blocks, int width) {
        begin(DeviceOp.CL_RMSNORM_DW_SUM);
        pseg = seg;
        o3 = dwOff;
        o4 = partials;
        n1 = width;
        n2 = blocks;
    }

    /**
     * x (rows of heads x hd) rotated in place by the rope tables at position row % seqLen, forward or its transpose
     * (backward); each work item takes chunk consecutive pairs of the pairs() in all.
     */
    final void setRope(int x, int rows, int seqLen, int heads, int hd, boolean forward) {
        begin(DeviceOp.ROPE);
        o0 = x;
        n0 = seqLen;
        n1 = heads;
        n2 = hd;
        gn = rows * heads * (hd / 2);
        f0 = forward ? 1f : -1f;
    }

    /** The rotated pairs of {@link #setRope}. */
    final int ropePairs() {
        return gn;
    }

    void rope(int gx) {
        int pairs = n2 / 2; // ("half" would be an OpenCL type name)
        for (int e = gx * chunk; e < min(gn, gx * chunk + chunk); e++) {
            int i = e % pairs;
            int h = (e / pairs) % n1;
            int r = e / (pairs * n1);
            int t = (r % n0) * pairs + i;
            float c = ropeCos[t];
            float s = f0 * ropeSin[t];
            int base = o0 + r * n1 * n2 + h * n2;
            float a = ar(base + i);
            float b = ar(base + pairs + i);
            aw(base + i, a * c - b * s);
            aw(base + pairs + i, b * c + a * s);
        }
    }

    /** h (rows, width) = the table's rows of the token ids, the table at tableOff in parameter segment seg. */
    final void setEmbedForward(int h, int seg, int tableOff, int rows, int width) {
        begin(DeviceOp.EMBED_FWD);
        pseg = seg;
        o0 = tableOff;
        o1 = h;
        n0 = rows;
        n1 = width;
    }

    void embedForward(int gx) {
        if (gx < n0 * n1) {
            int r = gx / n1;
            aw(o1 + gx, pw(o0 + tok[r] * n1 + gx % n1));
        }
    }

    /** The table's gradient rows (segment seg) += dh rows of the token ids (a work item per column, rows in order). */
    final void setEmbedBackward(int seg, int tableOff, int dh, int rows, int width) {
        begin(DeviceOp.EMBED_BWD);
        pseg = seg;
        o0 = tableOff;
        o1 = dh;
        n0 = rows;
        n1 = width;
    }

    void embedBackward(int gx) {
        if (gx < n1) {
            for (int r = 0; r < n0; r++) {
                gradAdd(o0 + tok[r] * n1 + gx, ar(o1 + r * n1 + gx));
            }
        }
    }

    /**
     * The same over the token index (reduce.cl, {@link TokenIndex}), a work item per (column, distinct token): columns
     * (width rounded up to the work-group) x tokens items, each token's rows added in row order; rows at or past
     * {@code rows} are left out.
     */
    final void setEmbedBackwardByToken(int seg, int tableOff, int dh, int rows, int width, int columns, int order,
                                       int starts, int tokens) {
        begin(DeviceOp.CL_EMBED_BWD);
        pseg = seg;
        o0 = tableOff;
        o1 = dh;
        o2 = order;
        o3 = starts;
        n0 = rows;
        n1 = width;
        n2 = tokens;
        n3 = columns;
    }

    /** act[x + i] += the bias at biasOff of parameter segment seg, i < count. */
    final void setBiasAdd(int x, int seg, int biasOff, int count) {
        begin(DeviceOp.BIAS_ADD);
        pseg = seg;
        o0 = x;
        o1 = biasOff;
        n0 = count;
    }

    void biasAdd(int gx) {
        if (gx < n0) {
            aw(o0 + gx, ar(o0 + gx) + pw(o1));
        }
    }

    /** The gradient at gradOff of segment seg += the sum of act[x, x + count), in order (one work item). */
    final void setSumToGrad(int seg, int gradOff, int x, int count) {
        begin(DeviceOp.SUM_TO_GRAD);
        pseg = seg;
        o0 = x;
        o1 = gradOff;
        n0 = count;
    }

    void sumToGrad(int gx) {
        if (gx == 0) {
            float s = 0f;
            for (int r = 0; r < n0; r++) {
                s += ar(o0 + r);
            }
            gradAdd(o1, s);
        }
    }

    /** act[dst + i] = act[src + i], i < count. */
    final void setCopy(int dst, int src, int count) {
        begin(DeviceOp.COPY);
        o0 = dst;
        o1 = src;
        n0 = count;
    }

    void copy(int gx) {
        for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
            aw(o0 + i, ar(o1 + i));
        }
    }

    /**
     * slot dstSlot [dst, dst + count) = slot srcSlot [src, ...) (see {@link #slotLoad}); with {@code bf16} the
     * hand-written copy that rounds into or widens out of a stash buffer (bf16.cl).
     */
    final void setStashCopy(int dstSlot, int dst, int srcSlot, int src, int count, boolean bf16) {
        begin(bf16 ? DeviceOp.CL_STASH16 : DeviceOp.XCOPY);
        cSel = dstSlot;
        aSel = srcSlot;
        o0 = dst;
        o1 = src;
        n0 = count;
    }

    void stashCopy(int gx) {
        for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
            slotStore(cSel, o0 + i, slotLoad(aSel, o1 + i));
        }
    }

    /**
     * act[dst + c * rows + r] = X[src + r * stride + c] for r < rows, c < cols, X the operand sel (parameters or
     * activations), in 16 x 16 tiles so that reads and writes both use whole cache lines.
     */
    final void setTranspose(int dst, int sel, int src, int rows, int cols, int stride) {
        begin(DeviceOp.TRANSPOSE);
        aSel = sel;
        o0 = dst;
        o1 = src;
        n0 = rows;
        n1 = cols;
        n2 = stride;
        n3 = (cols + 15) / 16;
    }

    /** The 16 x 16 tiles of {@link #setTranspose}. */
    final int transposeTiles() {
        return n3 * ((n0 + 15) / 16);
    }

    void transpose(int gx) {
        for (int tile = gx * chunk; tile < min(n3 * ((n0 + 15) / 16), gx * chunk + chunk); tile++) {
            int r0 = (tile / n3) * 16;
            int c0 = (tile % n3) * 16;
            int rEnd = min(n0, r0 + 16);
            int cEnd = min(n1, c0 + 16);
            for (int c = c0; c < cEnd; c++) {
                for (int r = r0; r < rEnd; r++) {
                    aw(o0 + c * n0 + r, load(aSel, o1 + r * n2 + c));
                }
            }
        }
    }
}
