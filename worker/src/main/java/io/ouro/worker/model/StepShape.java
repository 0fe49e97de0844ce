package io.ouro.worker.model;

import java.io.Serializable;

/**
 * How a worker runs its batch: {@code batch} sequences of {@code seqLen} tokens per step, as micro-batches of
 * {@code micro} sequences, keeping what {@link Recompute} says, with a layer's row-wise ops in chunks of
 * {@code chunk} rows when recomputing (0: the whole micro-batch), and stash buffers of at most {@code bufferLimit}
 * floats on a device backend (0: the device's limit), the stash in float32 or bfloat16 ({@link #withBf16Stash}), the
 * matrix products in the precision {@link MatmulPrecision} says ({@link #withMatmul}).
 */
public record StepShape(int batch, int seqLen, int micro, Recompute recompute, int chunk, long bufferLimit,
                        boolean bf16Stash, MatmulPrecision matmul) implements Serializable {

    /** With the products in fp32. */
    public StepShape(int batch, int seqLen, int micro, Recompute recompute, int chunk, long bufferLimit,
                     boolean bf16Stash) {
        this(batch, seqLen, micro, recompute, chunk, bufferLimit, bf16Stash, MatmulPrecision.FP32);
    }

    /** With the stash in float32. */
    public StepShape(int batch, int seqLen, int micro, Recompute recompute, int chunk, long bufferLimit) {
        this(batch, seqLen, micro, recompute, chunk, bufferLimit, false);
    }

    public StepShape {
        if (batch <= 0 || seqLen <= 0) {
            throw new IllegalArgumentException("StepShape: batch " + batch + " x " + seqLen + ": expected positive sizes");
        }
        if (micro <= 0 || micro > batch) {
            throw new IllegalArgumentException("StepShape.micro: expected 1.." + batch + " sequences, got " + micro);
        }
        if (recompute == null) {
            throw new IllegalArgumentException("StepShape.recompute: expected none, layer or loop_step");
        }
        if (matmul == null) {
            throw new IllegalArgumentException("StepShape.matmul: expected fp32 or bf16_tensor");
        }
        if (chunk < 0 || bufferLimit < 0) {
            throw new IllegalArgumentException("StepShape: chunk " + chunk + ", buffer limit " + bufferLimit
                    + ": expected values >= 0");
        }
    }

    /** The batch as one micro-batch with every activation kept. */
    public static StepShape whole(int batch, int seqLen) {
        return new StepShape(batch, seqLen, batch, Recompute.NONE, 0, 0);
    }

    public StepShape withMicro(int m) {
        return new StepShape(batch, seqLen, m, recompute, chunk, bufferLimit, bf16Stash, matmul);
    }

    public StepShape withRecompute(Recompute r) {
        return new StepShape(batch, seqLen, micro, r, chunk, bufferLimit, bf16Stash, matmul);
    }

    public StepShape withChunk(int c) {
        return new StepShape(batch, seqLen, micro, recompute, c, bufferLimit, bf16Stash, matmul);
    }

    public StepShape withBufferLimit(long floats) {
        return new StepShape(batch, seqLen, micro, recompute, chunk, floats, bf16Stash, matmul);
    }

    /**
     * The stash (the hidden states kept across layers for the backward pass when recomputing) in bfloat16: half its
     * memory; the forward pass is unchanged (it runs on float32 working copies), the backward recomputes from the
     * rounded states.
     */
    public StepShape withBf16Stash(boolean on) {
        return new StepShape(batch, seqLen, micro, recompute, chunk, bufferLimit, on, matmul);
    }

    /** The matrix products in the precision {@code m} says ({@link MatmulPrecision}; the OpenCL backend reads it). */
    public StepShape withMatmul(MatmulPrecision m) {
        return new StepShape(batch, seqLen, micro, recompute, chunk, bufferLimit, bf16Stash, m);
    }
}
