package io.ouro.worker.backend;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.opencl.DeviceOp.Family;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The per-family counts of a step against closed forms written out by hand for small shapes. */
class StepCountsTest {

    private static final LoopConfig M = new LoopConfig(16, 8, 2, 2, 12, 3, 10_000, 1e-6, 0.1, 0.02, 1);

    private static StepShape shape(Recompute r, boolean bf16) {
        return new StepShape(1, 5, 1, r, 0, 0, bf16);
    }

    @Test
    void gemmAndAttentionFlopsAreTheModelsSixPerWeightAndTheCausalAttention() {
        double d = 8, f = 12, v = 16, s = 5, t = 3, l = 2, w = 4 * d * d + 3 * d * f;
        double model = t * (l * (6 * w + 6 * d * (s + 1)) + 6 * d * (v + 1));
        assertEquals(model, MemoryPlan.modelFlopsPerToken(M, 5), 1e-9 * model);
        // layer recomputation: each layer's forward once more, and the LM head's product in the backward
        double layer = model + t * (l * (2 * w + 2 * d * (s + 1)) + 2 * d * v);
        assertEquals(layer, MemoryPlan.deviceFlopsPerToken(M, shape(Recompute.LAYER, false)), 1e-9 * layer);
        double loopStep = model + t * ((2 * l - 1) * (2 * w + 2 * d * (s + 1)) + 2 * d * v);
        assertEquals(loopStep, MemoryPlan.deviceFlopsPerToken(M, shape(Recompute.LOOP_STEP, false)), 1e-9 * loopStep);
        // linear in the tokens
        StepShape sh = shape(Recompute.LAYER, true);
        assertEquals(7 * StepCounts.gemm(M, sh, 1).flops(), StepCounts.gemm(M, sh, 7).flops(), 1e-6);
        assertEquals(7 * StepCounts.attention(M, sh, 1).bytes(), StepCounts.attention(M, sh, 7).bytes(), 1e-6);
    }

    @Test
    void bytesCountEachOperandOnce() {
        // attention without recomputation: T L forward passes (q, k, v in, output out, a log-sum-exp per head) and
        // backward passes (q, k, v, output, its gradient, the log-sum-exp in; dq, dk, dv out), 4 bytes each
        double r = 10, d = 8, h = 2, tl = 3 * 2;
        assertEquals(tl * 4 * r * (4 * d + h) + tl * 4 * r * (8 * d + h),
                StepCounts.attention(M, shape(Recompute.NONE, false), r).bytes(), 1e-6);
        // the optimizer: 40 bytes and 18 FLOP per parameter, whatever the tokens
        double p = new ParamLayout(M).totalSize();
        assertEquals(40 * p, StepCounts.of(Family.OPTIMIZER, M, shape(Recompute.NONE, false), 1).bytes(), 1e-6);
        assertEquals(18 * p, StepCounts.of(Family.OPTIMIZER, M, shape(Recompute.NONE, false), 1000).flops(), 1e-6);
        // a bf16 stash moves fewer bytes than an fp32 one, and no stash without recomputation
        double fp32 = StepCounts.elementwise(M, shape(Recompute.LAYER, false), r).bytes();
        double bf16 = StepCounts.elementwise(M, shape(Recompute.LAYER, true), r).bytes();
        double stashes = 3 * 2;
        assertEquals(stashes * 2 * r * d * 2, fp32 - bf16, 1e-6);
        assertEquals(StepCounts.elementwise(M, shape(Recompute.NONE, false), r).bytes(),
                StepCounts.elementwise(M, shape(Recompute.NONE, true), r).bytes(), 1e-6);
    }

    @Test
    void theStepIsTheSumOfItsFamiliesAndDecodingCountsNothing() {
        StepShape sh = shape(Recompute.LAYER, true);
        double flops = 0, bytes = 0;
        for (Family f : Family.values()) {
            StepCounts.Count c = StepCounts.of(f, M, sh, 10);
            assertTrue(c.flops() >= 0 && c.bytes() >= 0, f + " counts");
            flops += c.flops();
            bytes += c.bytes();
        }
        assertEquals(flops, StepCounts.step(M, sh, 10).flops(), 1e-6);
        assertEquals(bytes, StepCounts.step(M, sh, 10).bytes(), 1e-6);
        assertEquals(StepCounts.Count.ZERO, StepCounts.of(Family.DECODE, M, sh, 10));
        assertEquals(StepCounts.Count.ZERO, StepCounts.of(Family.TRANSFER, M, sh, 10));
        for (Family f : new Family[]{Family.GEMM, Family.ATTENTION, Family.REDUCE, Family.ELEMENTWISE}) {
            assertTrue(StepCounts.of(f, M, sh, 10).flops() > 0 && StepCounts.of(f, M, sh, 10).bytes() > 0, f + " runs");
        }
    }
}
