package io.ouro.worker.backend;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.opencl.DeviceOp.Family;

/**
 * FLOPs and bytes of one training step of the OpenCL backend by op {@link Family}, computed from the shapes: counts,
 * not hardware counters. One function per family. A GEMM, attention or row-wise op counts each operand read once and
 * each result written once (fp32, 4 bytes; a bf16 stash 2): the least traffic a kernel can have, what a GPU kernel's
 * bandwidth is measured against; a kernel that reads an operand more than once moves more.
 *
 * <p>A step over {@code tokens} rows (micro-batches of sequences of {@code shape.seqLen()}) runs each layer's forward
 * {@code T (L + extra)} times, where recomputation adds {@code extra} (layer: L, loop_step: 2L - 1, none: 0), and its
 * backward {@code T L} times; the LM head's forward T times (twice with recomputation, whose backward repeats the
 * product) and its backward T times. The exit gate ({@code d} to 1 per loop step) counts with the GEMMs.
 * {@link MemoryPlan#modelFlopsPerToken} and {@link MemoryPlan#flopsPerToken} are the GEMM and attention counts here.
 */
public final class StepCounts {

    /** FLOPs and bytes moved. */
    public record Count(double flops, double bytes) {

        public static final Count ZERO = new Count(0, 0);

        Count plus(Count o) {
            return new Count(flops + o.flops, bytes + o.bytes);
        }

        Count times(double k) {
            return new Count(flops * k, bytes * k);
        }
    }

    private StepCounts() {
    }

    /** The count of one family over a step of {@code tokens} rows; 0 for the families a training step does not run. */
    public static Count of(Family f, LoopConfig m, StepShape s, double tokens) {
        return switch (f) {
            case GEMM -> gemm(m, s, tokens);
            case ATTENTION -> attention(m, s, tokens);
            case REDUCE -> reduce(m, s, tokens);
            case ELEMENTWISE -> elementwise(m, s, tokens);
            case OPTIMIZER -> optimizer(m);
            case DECODE, TRANSFER -> Count.ZERO;
        };
    }

    /** All families of a step. */
    public static Count step(LoopConfig m, StepShape s, double tokens) {
        Count c = Count.ZERO;
        for (Family f : Family.values()) {
            c = c.plus(of(f, m, s, tokens));
        }
        return c;
    }

    /** Forward passes of one layer per step, recomputation's included. */
    static double layerForwards(LoopConfig m, Recompute r) {
        double extra = switch (r) {
            case NONE -> 0;
            case LAYER -> m.layers();
            case LOOP_STEP -> 2.0 * m.layers() - 1;
        };
        return m.steps() * (m.layers() + extra);
    }

    /** Backward passes of one layer per step. */
    static double layerBackwards(LoopConfig m) {
        return (double) m.steps() * m.layers();
    }

    /** Forward passes of the LM head per step: once per loop step, and once more where recomputation drops logits. */
    static double headForwards(LoopConfig m, Recompute r) {
        return m.steps() * (r == Recompute.NONE ? 1.0 : 2.0);
    }

    /**
     * The matrix products: the layer's q, k, v, o (d x d), gate and up (d x ffn), down (ffn x d), the LM head (d x V)
     * and the exit gate (d x 1), each forward (2 FLOP per weight per row) and backward (dX and dW, 4); bytes: each
     * product reads its two operands and writes its result once, dW reads and writes the gradient it adds to.
     */
    public static Count gemm(LoopConfig m, StepShape s, double tokens) {
        double d = m.hidden(), f = m.ffn();
        Count layer = linear(tokens, d, d).times(4).plus(linear(tokens, d, f).times(2)).plus(linear(tokens, f, d));
        double lf = layerForwards(m, s.recompute()), lb = layerBackwards(m), hf = headForwards(m, s.recompute());
        Count fwd = layer.times(lf).plus(linear(tokens, d, m.vocab()).times(hf)).plus(linear(tokens, d, 1).times(m.steps()));
        // backward: dX and dW, twice the forward's FLOPs
        Count bwdLayer = new Count(2 * layer.flops, linearBackwardBytes(tokens, d, d) * 4
                + linearBackwardBytes(tokens, d, f) * 2 + linearBackwardBytes(tokens, f, d));
        Count bwd = bwdLayer.times(lb).plus(new Count(2 * linear(tokens, d, m.vocab()).flops,
                linearBackwardBytes(tokens, d, m.vocab())).times(m.steps()))
                .plus(new Count(2 * linear(tokens, d, 1).flops, linearBackwardBytes(tokens, d, 1)).times(m.steps()));
        return fwd.plus(bwd);
    }

    /** One forward product of {@code rows} x {@code in} by {@code in} x {@code out}. */
    private static Count linear(double rows, double in, double out) {
        return new Count(2 * rows * in * out, 4 * (rows * in + in * out + rows * out));
    }

    /** dX (reads dY and W, writes dX) and dW (reads dY and X, reads and writes dW). */
    private static double linearBackwardBytes(double rows, double in, double out) {
        return 4 * (rows * out + in * out + rows * in) + 4 * (rows * out + rows * in + 2 * in * out);
    }

    /**
     * Causal attention: QK^T and AV over S/2 keys on average, 2 d (S + 1) FLOP per row forward and twice that backward
     * (the count MFU uses); bytes: forward reads q, k, v and writes the output and the row's log-sum-exp per head,
     * backward reads q, k, v, the output, its gradient and the log-sum-exp and writes dq, dk, dv.
     */
    public static Count attention(LoopConfig m, StepShape s, double tokens) {
        double d = m.hidden(), h = m.heads(), perRow = 2 * d * (s.seqLen() + 1.0);
        Count fwd = new Count(tokens * perRow, 4 * tokens * (4 * d + h));
        Count bwd = new Count(2 * tokens * perRow, 4 * tokens * (8 * d + h));
        return fwd.times(layerForwards(m, s.recompute())).plus(bwd.times(layerBackwards(m)));
    }

    /**
     * The row reductions: RMSNorm (two per layer pass and one before each LM head pass; forward 4 FLOP per element,
     * backward dx 8 and dw 2), the cross-entropy (forward 4 FLOP per logit: max, subtract, exp, sum; backward 3) and
     * the embedding's backward (one add per element). The exit objective and the per-step means (a few FLOPs per row
     * and loop step) are left out.
     */
    public static Count reduce(LoopConfig m, StepShape s, double tokens) {
        double d = m.hidden(), v = m.vocab(), r = tokens;
        Count normFwd = new Count(4 * r * d, 4 * (2 * r * d + d + r));
        Count normBwd = new Count(10 * r * d, 4 * (3 * r * d + d + r) + 4 * (2 * r * d + 2 * d));
        double lf = layerForwards(m, s.recompute()), lb = layerBackwards(m), hf = headForwards(m, s.recompute());
        Count norms = normFwd.times(2 * lf + hf).plus(normBwd.times(2 * lb + m.steps()));
        Count ce = new Count(4 * r * v, 4 * (r * v + 2 * r)).plus(new Count(3 * r * v, 4 * (2 * r * v + r)))
                .times(m.steps());
        Count embed = new Count(r * d, 4 * (r * d + r * d + r));
        return norms.plus(ce).plus(embed);
    }

    /**
     * The element-wise ops: two residual adds (1 FLOP per element), SwiGLU (forward 4 FLOP per element of the FFN's
     * width, backward 8) and RoPE on q and k (3 per element) per layer pass, forward and backward; the embedding's
     * gather; the stash (the layer inputs recomputation keeps, as bf16 or fp32: written in the forward, read back in
     * the backward; none without recomputation, where the activations stay where they are).
     */
    public static Count elementwise(LoopConfig m, StepShape s, double tokens) {
        double d = m.hidden(), f = m.ffn(), r = tokens;
        Count pass = new Count(2 * r * d, 2 * 12 * r * d)
                .plus(new Count(6 * r * d, 4 * 4 * r * d));
        Count fwd = pass.plus(new Count(4 * r * f, 12 * r * f));
        Count bwd = pass.plus(new Count(8 * r * f, 20 * r * f));
        double stashes = switch (s.recompute()) {
            case NONE -> 0;
            case LAYER -> (double) m.steps() * m.layers();
            case LOOP_STEP -> m.steps();
        };
        double stashBytes = stashes * 2 * r * d * (4 + (s.bf16Stash() ? 2 : 4));
        return fwd.times(layerForwards(m, s.recompute())).plus(bwd.times(layerBackwards(m)))
                .plus(new Count(0, 4 * 2 * r * d + stashBytes));
    }

    /**
     * The gradient clip (the sum of squares, 2 FLOP and 4 bytes per parameter; the scale, 1 and 8) and AdamW (about
     * 15 FLOP per parameter; reads the parameter, its gradient and both moments, writes the parameter and the moments:
     * 28 bytes), once per step whatever the tokens.
     */
    public static Count optimizer(LoopConfig m) {
        double p = new ParamLayout(m).totalSize();
        return new Count(18 * p, 40 * p);
    }
}
