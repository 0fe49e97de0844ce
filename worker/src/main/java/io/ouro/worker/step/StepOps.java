package io.ouro.worker.step;

import io.ouro.worker.model.Objective;
import io.ouro.worker.model.TensorView;

/**
 * The ops of a training step, which {@link LoopSchedule} calls in the one order it defines. Implementations:
 * {@code reference.JavaOps} (plain Java, the reference every other implementation is tested against) and the
 * OpenCL backend's {@code OpenClStepOps}. Parameters, gradients and Adam's moments belong to the implementation and
 * are named by their {@link TensorView}; activations are {@link Region}s of memory that {@link #allocate} hands out.
 * Ops that write a gradient add into it ({@code +=}); the others overwrite their output.
 */
public interface StepOps {

    /**
     * Replaces the activation memory by regions of the given sizes (elements). A {@code stash} region is only ever
     * the source or destination of {@link #copy} (hidden states kept across layers for the backward pass), so an
     * implementation may keep it in memory the other ops cannot address.
     */
    default Region[] allocate(long[] sizes, boolean[] stash) {
        return allocate(sizes, stash, false);
    }

    /**
     * The same, with the stash regions in bfloat16 when {@code bf16Stash}: a {@link #copy} into a stash region rounds
     * each value to the nearest bfloat16 (ties to even), and reading it back gives the rounded values, on every
     * implementation (an implementation may store them in 16 bits).
     */
    Region[] allocate(long[] sizes, boolean[] stash, boolean bf16Stash);

    /** Elements of one cell's attention state (what the backward pass needs besides q, k, v and the output). */
    long attentionStateSize(int batch, int seqLen, int heads);

    /** The token and target ids of the next micro-batch (the rows every following op sees). */
    void setBatch(int[] tokens, int[] targets);

    /** The current contents of {@code count} elements at {@code r}. */
    float[] read(Region r, int count);

    /** Sets the elements at {@code r} (tests and diagnostics: a device backend moves its whole buffer). */
    void write(Region r, float[] values);

    // h (N,D) = table[tokens]
    void embedForward(Region h, TensorView table, int n, int d);

    // grad(table)[tokens] += dh (N,D)
    void embedBackward(TensorView table, Region dh, int n, int d);

    // x (N,D) -> y (N,D), rstd (N)
    void rmsnormForward(Region y, Region rstd, Region x, TensorView w, int n, int d, float eps);

    // dy (N,D) -> dx +=, grad(w) +=
    void rmsnormBackward(Region dx, Region dy, Region x, Region rstd, TensorView w, int n, int d);

    // y (N,O) = x (N,I) . w (O,I)^T
    void linearForward(Region y, Region x, TensorView w, int n, int in, int out);

    // dx (N,I) += dy (N,O) . w (O,I)
    void linearBackwardInput(Region dx, Region dy, TensorView w, int n, int in, int out);

    // grad(w) (O,I) += dy (N,O)^T . x (N,I)
    void linearBackwardWeight(TensorView w, Region dy, Region x, int n, int in, int out);

    // y[i] += bias, i < n (bias has one element)
    void biasAdd(Region y, TensorView bias, int n);

    // grad(bias) += sum of dy[0, n)
    void biasBackward(TensorView bias, Region dy, int n);

    // x (N,H,hd) rotated in place (forward) or by the transpose (backward); row r is at position r % seqLen
    void rope(Region x, int n, int seqLen, int heads, int hd, boolean forward);

    // q, k, v (B,S,H,hd) -> out (B,S,H,hd), state (attentionStateSize)
    void attentionForward(Region out, Region state, Region q, Region k, Region v, int batch, int seqLen, int heads,
                          int hd);

    // dout -> dq, dk, dv +=
    void attentionBackward(Region dq, Region dk, Region dv, Region dout, Region out, Region state, Region q,
                           Region k, Region v, int batch, int seqLen, int heads, int hd);

    // m = silu(g) * u, count elements
    void swigluForward(Region m, Region g, Region u, int count);

    // dm -> dg +=, du +=
    void swigluBackward(Region dg, Region du, Region dm, Region g, Region u, int count);

    // acc += x
    void add(Region acc, Region x, int count);

    // dst = src, count elements; either may be a stash region
    void copy(Region dst, Region src, int count);

    void zero(Region r, int count);

    // logits (rows,V) of rows [first, first + rows) of the micro-batch -> lse[i], ce[i] for i < rows
    // (ce is 0 where the row has no target)
    void crossEntropyForward(Region logits, Region lse, Region ce, int first, int rows, int vocab);

    // in place: logits (rows,V) -> dce[i] * (softmax - onehot(target)), 0 for rows without a target
    void crossEntropyBackward(Region logits, Region lse, Region dce, int first, int rows, int vocab);

    /**
     * The exit distribution p and the objective's gradients dz (and dce in Stage I) from the gate logits z and the
     * cross-entropies ce, all (T,N). The loss is normalised by {@code tokens} (the whole step's tokens with a
     * target, so that micro-batches add up to the batch). Returns {loss, sum_n CE_t (T values), sum_n p_t (T
     * values)} over the rows with a target.
     */
    double[] exitObjective(Region z, Region ce, Region p, Region dz, Region dce, int n, int steps, Objective objective,
                           int tokens);

    /** Sum of squares of the whole gradient, in a fixed order. */
    double gradSumSquares();

    /** grad *= factor. */
    void scaleGrads(float factor);

    /** Divides every gradient by {@code divisor} (the data-parallel mean: the token-weighted sum / the tokens). */
    void divideGrads(float divisor);

    /** Zeroes the gradient. */
    void zeroGrads();

    /**
     * One AdamW update of tensor {@code t}: {@code p = p * keep - stepSize * m / (sqrt(v) / sqrtBc2 + eps)} after
     * the moment updates (see {@code io.ouro.worker.model.AdamW}).
     */
    void adamw(TensorView t, float keep, float beta1, float beta2, float stepSize, float sqrtBc2, float eps);
}
