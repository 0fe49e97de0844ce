package io.ouro.worker.opencl;

/**
 * The losses of {@link LoopKernel}: cross-entropy over a block of logit rows (translated, or its twins: xent.cl's
 * item per row, reduce.cl's work-group per row) and the exit objective over the T loop steps.
 */
abstract class LossKernels extends AttentionKernels {

    /**
     * rows [first, first + rows) of the batch, logits (rows, vocab) at logits: lse at lse + row, CE at ce + row
     * (0 where the target is -1); on the kernel {@code variant}: {@link DeviceOp#CE_FWD} (below),
     * {@link DeviceOp#CL_CE_FWD} (an item per row) or {@link DeviceOp#CL_CE_FWD_WG} (a work-group of
     * {@link ClKernels#CE_GROUP} per row), all with these fields.
     */
    final void setCrossEntropyForward(DeviceOp variant, int logits, int lse, int ce, int first, int rows, int vocab) {
        if (variant != DeviceOp.CE_FWD && variant != DeviceOp.CL_CE_FWD && variant != DeviceOp.CL_CE_FWD_WG) {
            throw new IllegalArgumentException(variant + " is not a cross-entropy forward");
        }
        begin(variant);
        o0 = logits;
        o1 = lse;
        o2 = ce;
        n0 = rows;
        n1 = vocab;
        n2 = first;
    }

    void crossEntropyForward(int gx) {
        if (gx < n0) {
            int row = o0 + gx * n1;
            float mx = -3.0e38f;
            for (int j = 0; j < n1; j++) {
                mx = max(mx, ar(row + j));
            }
            float sum = 0f;
            for (int j = 0; j < n1; j++) {
                sum += exp(ar(row + j) - mx);
            }
            float l = mx + log(sum);
            int t = tgt[n2 + gx];
            aw(o1 + n2 + gx, l);
            float c = 0f;
            if (t >= 0) {
                c = l - ar(row + t);
            }
            aw(o2 + n2 + gx, c);
        }
    }

    /**
     * In place: the logits become dce[row] * (softmax - onehot), from the forward's lse; the {@code variant} as the
     * forward's ({@link DeviceOp#CE_BWD}, {@link DeviceOp#CL_CE_BWD}, {@link DeviceOp#CL_CE_BWD_WG}).
     */
    final void setCrossEntropyBackward(DeviceOp variant, int logits, int lse, int dce, int first, int rows, int vocab) {
        if (variant != DeviceOp.CE_BWD && variant != DeviceOp.CL_CE_BWD && variant != DeviceOp.CL_CE_BWD_WG) {
            throw new IllegalArgumentException(variant + " is not a cross-entropy backward");
        }
        begin(variant);
        o0 = logits;
        o1 = lse;
        o3 = dce;
        n0 = rows;
        n1 = vocab;
        n2 = first;
    }

    void crossEntropyBackward(int gx) {
        if (gx < n0) {
            int row = o0 + gx * n1;
            int t = tgt[n2 + gx];
            float g = 0f;
            if (t >= 0) {
                g = ar(o3 + n2 + gx);
            }
            float l = ar(o1 + n2 + gx);
            for (int j = 0; j < n1; j++) {
                aw(row + j, g * exp(ar(row + j) - l));
            }
            if (t >= 0) {
                aw(row + t, ar(row + t) - g);
            }
        }
    }

    /**
     * The exit distribution and objective per token r < tokens over T = steps; (T, tokens) arrays z, ce, p, dz, dce.
     * Stage I ({@code stageOne}) or II; scale = the loss scale (1/tokens or 1/(tokens*T)), beta, k50, gamma the
     * objective's constants. Writes metrics[r] = the token's scaled loss; p and dz hold log p and dL/dlog p on the way.
     */
    final void setExitObjective(int z, int ce, int p, int dz, int dce, int tokens, int steps, boolean stageOne,
                                float scale, float beta, float k50, float gamma) {
        begin(DeviceOp.EXIT);
        o0 = z;
        o1 = ce;
        o2 = p;
        o3 = dz;
        o4 = dce;
        n0 = tokens;
        n1 = steps;
        n2 = stageOne ? 1 : 2;
        f0 = scale;
        f1 = beta;
        f2 = k50;
        f3 = gamma;
    }

    void exitObjective(int gx) {
        if (gx < n0) {
            int r = gx;
            int nn = n0;
            float loss = 0f;
            float logS = 0f;
            for (int t = 0; t < n1 - 1; t++) {
                float zt = ar(o0 + t * nn + r);
                aw(o2 + t * nn + r, logS - softplus(-zt));
                logS = logS - softplus(zt);
            }
            aw(o2 + (n1 - 1) * nn + r, logS);
            if (tgt[r] < 0) {
                for (int t = 0; t < n1; t++) {
                    aw(o2 + t * nn + r, 0f);
                    aw(o3 + t * nn + r, 0f);
                    aw(o4 + t * nn + r, 0f);
                }
            }
            if (tgt[r] >= 0) {
                for (int t = 0; t < n1; t++) {
                    float lp = ar(o2 + t * nn + r);
                    float pt = exp(lp);
                    float c = ar(o1 + t * nn + r);
                    aw(o2 + t * nn + r, pt);
                    if (n2 == 1) {
                        loss += pt * c + f1 * pt * lp;
                        aw(o3 + t * nn + r, (c + f1 * (lp + 1f)) * pt);
                        aw(o4 + t * nn + r, pt * f0);
                    }
                }
                if (n2 == 1) {
                    float tail = ar(o3 + (n1 - 1) * nn + r);
                    aw(o3 + (n1 - 1) * nn + r, 0f);
                    for (int j = n1 - 2; j >= 0; j--) {
                        float lam = sigmoid(ar(o0 + j * nn + r));
                        float gj = ar(o3 + j * nn + r);
                        aw(o3 + j * nn + r, (gj * (1f - lam) - lam * tail) * f0);
                        tail += gj;
                    }
                }
                if (n2 == 2) {
                    aw(o3 + r, 0f);
                    for (int t = 1; t < n1; t++) {
                        float zt = ar(o0 + t * nn + r);
                        float imp = max(0f, ar(o1 + (t - 1) * nn + r) - ar(o1 + t * nn + r));
                        float wt = sigmoid(f2 * (imp - f3));
                        loss += wt * softplus(zt) + (1f - wt) * softplus(-zt);
                        aw(o3 + t * nn + r, (sigmoid(zt) - 1f + wt) * f0);
                    }
                }
            }
            metrics[r] = loss * f0;
        }
    }

    /**
     * After {@link #setExitObjective} (its registers as they are): per step t < steps, metrics[tokens + t] = the sum of
     * CE_t and metrics[tokens + steps + t] = the sum of p_t over the tokens with a target.
     */
    final void setStepMeans() {
        begin(DeviceOp.STEP_MEANS);
    }

    void stepMeans(int gx) {
        if (gx < n1) {
            float sc = 0f;
            float sp = 0f;
            for (int r = 0; r < n0; r++) {
                if (tgt[r] >= 0) {
                    sc += ar(o1 + gx * n0 + r);
                    sp += ar(o2 + gx * n0 + r);
                }
            }
            metrics[n0 + gx] = sc;
            metrics[n0 + n1 + gx] = sp;
        }
    }
}
