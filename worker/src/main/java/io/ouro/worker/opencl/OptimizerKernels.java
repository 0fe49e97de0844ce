package io.ouro.worker.opencl;

/**
 * The optimizer's ops of {@link LoopKernel} over one parameter segment ({@link #pseg}): gradient norms and scaling,
 * AdamW, and the exchange buffer's ranges in and out.
 */
abstract class OptimizerKernels extends LossKernels {

    /** partials partial sums of squares of segment seg's gradient [0, size), in runs of ceil(size/partials), into metrics[at + i]. */
    final void setGradSumSquares(int seg, int at, int partials, int size) {
        begin(DeviceOp.SUMSQ);
        pseg = seg;
        o0 = at;
        n0 = partials;
        n1 = size;
        n2 = (size + partials - 1) / partials;
    }

    void gradSumSquares(int gx) {
        if (gx < n0) {
            float s = 0f;
            int end = min(n1, (gx + 1) * n2);
            for (int i = gx * n2; i < end; i++) {
                float g = gr(i);
                s += g * g;
            }
            metrics[o0 + gx] = s;
        }
    }

    /** Segment seg's gradient [0, size) times factor, or divided by it ({@code divide}). */
    final void setScaleGrads(int seg, int size, float factor, boolean divide) {
        begin(DeviceOp.SCALE);
        pseg = seg;
        n0 = size;
        n1 = divide ? 1 : 0;
        f0 = factor;
    }

    void scaleGrads(int gx) {
        for (int i = gx * chunk; i < min(n0, gx * chunk + chunk); i++) {
            float g = gr(i);
            gset(i, n1 == 1 ? g / f0 : g * f0);
        }
    }

    /** The bfloat16 copy of segment seg's parameters [0, size) from the fp32 ones (bf16.cl's ouro_weight_bf16). */
    final void setWeightCopy(int seg, int size) {
        begin(DeviceOp.CL_WEIGHT_BF16);
        pseg = seg;
        n0 = size;
    }

    /** xg[e] = scale * (gradients or parameters)[off + e] of segment seg, e < len. */
    final void setRangeOut(boolean grads, int seg, int off, int len, float scale) {
        begin(DeviceOp.RANGE_OUT);
        pseg = seg;
        o0 = off;
        n0 = len;
        n1 = grads ? 1 : 0;
        f0 = scale;
    }

    void rangeOut(int gx) {
        for (int e = gx * chunk; e < min(n0, gx * chunk + chunk); e++) {
            int i = o0 + e;
            float x = n1 == 0 ? pw(i) : gr(i);
            xg[e] = f0 * x;
        }
    }

    /** (gradients or parameters)[off + e] of segment seg = xg[e], e < len. */
    final void setRangeIn(boolean grads, int seg, int off, int len) {
        begin(DeviceOp.RANGE_IN);
        pseg = seg;
        o0 = off;
        n0 = len;
        n1 = grads ? 1 : 0;
    }

    void rangeIn(int gx) {
        for (int e = gx * chunk; e < min(n0, gx * chunk + chunk); e++) {
            int i = o0 + e;
            if (n1 == 0) {
                pset(i, xg[e]);
            }
            if (n1 == 1) {
                gset(i, xg[e]);
            }
        }
    }

    /**
     * AdamW on segment seg's parameters [off, off + len), their moments from momentOff: keep = the decay's keep factor,
     * stepSize = lr / bc1, sqrtBc2 = sqrt(bc2).
     */
    final void setAdamw(int seg, int off, int momentOff, int len, float keep, float beta1, float beta2, float stepSize,
                        float sqrtBc2, float eps) {
        begin(DeviceOp.ADAMW);
        pseg = seg;
        o0 = off;
        o1 = momentOff;
        n0 = len;
        f0 = keep;
        f1 = beta1;
        f2 = beta2;
        f3 = stepSize;
        f4 = sqrtBc2;
        f5 = eps;
    }

    void adamw(int gx) {
        for (int e = gx * chunk; e < min(n0, gx * chunk + chunk); e++) {
            int i = o0 + e;
            int j = o1 + e;
            float g = gr(i);
            float m = f1 * m1r(j) + (1f - f1) * g;
            float v = f2 * m2r(j) + (1f - f2) * g * g;
            m1w(j, m);
            m2w(j, v);
            pset(i, pw(i) * f0 - f3 * m / (sqrt(v) / f4 + f5));
        }
    }
}
