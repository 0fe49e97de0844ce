package io.ouro.worker.backend;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.OpenClOps;
import io.ouro.worker.opencl.OpenClStepOps;
import io.ouro.worker.opencl.TokenIndex;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What one worker of a stage needs on an OpenCL GPU, computed from the same code that allocates it
 * ({@link OpenClModel#activationBuffers}, {@link OpenClStepOps#paramSegments}): parameters, gradients and the two
 * AdamW moments (fp32, 16 bytes per parameter), the activation buffer (the working set of one micro-batch) and the
 * stash buffers (hidden states kept for the backward pass), and the executor heap (Aparapi keeps a host array for
 * every device buffer, and a checkpoint copies parameters and moments out once more). {@link #choose} picks the
 * micro-batch and recomputation a stage runs with when its config leaves them open.
 *
 * @param problem      why the shape cannot be allocated at all (a buffer past its limit), or null
 * @param actBuffers   device buffers (windows) of the activation arena
 * @param largestBytes the largest single device buffer: every one stays below Aparapi's 2 GiB
 *                     ({@link io.ouro.worker.opencl.HostArrays#MAX_FLOATS})
 * @param weightCopyBytes the weights' bfloat16 copy the tensor-core GEMM reads (train.matmul bf16_tensor: 2 bytes per
 *                     parameter, one buffer per segment), 0 without it
 */
public record MemoryPlan(LoopConfig model, StepShape shape, long parameters, int paramSegments, long stateBytes,
                         long activationBytes, long stashBytes, int stashBuffers, long deviceBytes, long heapBytes,
                         String problem, int actBuffers, long largestBytes, long weightCopyBytes) {

    /** The shape on a GPU whose largest buffer is {@code actLimit} floats. */
    public static MemoryPlan of(LoopConfig model, StepShape shape, long actLimit) {
        return of(model, shape, false, actLimit);
    }

    /** The shape on a GPU, or on a CPU device ({@code cpu}: the GEMM's transposition scratch is added). */
    public static MemoryPlan of(LoopConfig model, StepShape shape, boolean cpu, long actLimit) {
        return of(model, shape, cpu, actLimit, 1, 0);
    }

    /**
     * The same for a data-parallel worker: the Adam moments of 1/{@code optimizerShards} of the parameters (ZeRO-1
     * over that many ranks; 1: all of them), and the exchange buffer of the largest gradient bucket
     * ({@code exchangeFloats}; 0: none yet).
     */
    public static MemoryPlan of(LoopConfig model, StepShape shape, boolean cpu, long actLimit, int optimizerShards,
                                long exchangeFloats) {
        ParamLayout layout = new ParamLayout(model);
        long p = layout.totalSize();
        long limit = shape.bufferLimit() > 0 ? Math.min(shape.bufferLimit(), actLimit) : actLimit;
        int segments = 0, actBuffers = 0;
        long largest = 0, copy = 0;
        boolean bf16Weights = shape.matmul() == MatmulPrecision.BF16_TENSOR;
        String problem = null;
        try {
            io.ouro.worker.model.ParamSegments segs = OpenClStepOps.paramSegments(layout, limit);
            segments = segs.count();
            for (int i = 0; i < segments; i++) {
                largest = Math.max(largest, segs.size(i));
                copy += bf16Weights ? OpenClOps.bf16Floats(segs.size(i)) : 0;
            }
        } catch (IllegalArgumentException e) {
            problem = e.getMessage();
        }
        long act = 0, stash = 0;
        int stashBuffers = 0;
        try {
            OpenClStepOps.BufferLayout b = OpenClModel.activationBuffers(model, shape, cpu, actLimit);
            act = b.actFloats();
            for (long s : b.stashFloats()) {
                stash += s;
            }
            stashBuffers = b.stashFloats().length;
            actBuffers = b.actWindows();
            largest = Math.max(largest, b.largestFloats());
        } catch (IllegalArgumentException e) {
            problem = problem == null ? e.getMessage() : problem;
        }
        long rows = (long) shape.micro() * shape.seqLen();
        // metrics, token and target ids, the ids' index by token (the embedding backward's), RoPE tables, and
        // one-element placeholders of the kernel's unused buffers (and of the exchange buffer, which grows to the
        // largest gradient bucket once the data-parallel step uses it)
        long small = 4L * (rows * 3 + TokenIndex.ints(Math.toIntExact(rows)) + 2L * model.steps()
                + OpenClOps.PARAM_SEGMENTS * 256L
                + (long) shape.seqLen() * model.headDim() + 4L * (OpenClOps.PARAM_SEGMENTS - Math.max(1, segments))
                + (OpenClOps.PARAM_SEGMENTS - (bf16Weights ? Math.max(1, segments) : 0))
                + (16 - stashBuffers) + (io.ouro.worker.opencl.OpenClOps.ACT_PIECES - Math.max(1, actBuffers)) + 1);
        // parameters and gradients, the moments of this rank's share (rounded up), the exchange buffer
        long state = 8 * p + 8 * ((p + optimizerShards - 1) / optimizerShards);
        long device = state + 4 * (act + stash + copy) + small + 4 * Math.max(0, Math.min(exchangeFloats, p) - 1);
        long heap = device + 12 * p;
        return new MemoryPlan(model, shape, p, segments, state, 4 * act, 4 * stash, stashBuffers, device, heap, problem,
                actBuffers, 4 * largest, 4 * copy);
    }

    /** Whether the shape can be allocated and fits {@code deviceBytes}. */
    public boolean fits(long deviceBytes) {
        return problem == null && this.deviceBytes <= deviceBytes;
    }

    /**
     * The shape a stage runs with: the given micro-batch and recomputation where the config sets them, otherwise the
     * least recomputation and then the largest micro-batch (a divisor of the batch) that fit the device. When nothing
     * fits, the smallest choice, whose plan says why.
     *
     * @param micro     sequences per micro-batch, or 0 to choose
     * @param recompute the recomputation, or null to choose
     */
    public static MemoryPlan choose(LoopConfig model, int batch, int seqLen, int micro, Recompute recompute, int chunk,
                                    long bufferLimit, long deviceBytes, long actLimit) {
        return choose(model, batch, seqLen, micro, recompute, chunk, bufferLimit, deviceBytes, actLimit, 1, 0);
    }

    /** The same for a data-parallel worker (see {@link #of(LoopConfig, StepShape, boolean, long, int, long)}). */
    public static MemoryPlan choose(LoopConfig model, int batch, int seqLen, int micro, Recompute recompute, int chunk,
                                    long bufferLimit, long deviceBytes, long actLimit, int optimizerShards,
                                    long exchangeFloats) {
        return choose(model, batch, seqLen, micro, recompute, chunk, bufferLimit, deviceBytes, actLimit, optimizerShards,
                exchangeFloats, false);
    }

    /** The same, with the stash in bfloat16 when {@code bf16Stash} ({@link StepShape#withBf16Stash}). */
    public static MemoryPlan choose(LoopConfig model, int batch, int seqLen, int micro, Recompute recompute, int chunk,
                                    long bufferLimit, long deviceBytes, long actLimit, int optimizerShards,
                                    long exchangeFloats, boolean bf16Stash) {
        return choose(model, batch, seqLen, micro, recompute, chunk, bufferLimit, deviceBytes, actLimit,
                optimizerShards, exchangeFloats, bf16Stash, MatmulPrecision.FP32);
    }

    /**
     * The same with the products in {@code matmul}'s precision ({@link StepShape#withMatmul}): bf16_tensor adds the
     * weights' bfloat16 copy to every choice.
     */
    public static MemoryPlan choose(LoopConfig model, int batch, int seqLen, int micro, Recompute recompute, int chunk,
                                    long bufferLimit, long deviceBytes, long actLimit, int optimizerShards,
                                    long exchangeFloats, boolean bf16Stash, MatmulPrecision matmul) {
        List<Recompute> modes = recompute != null ? List.of(recompute) : List.of(Recompute.values());
        List<Integer> micros = new ArrayList<>();
        if (micro > 0) {
            micros.add(Math.min(micro, batch));
        } else {
            for (int m = batch; m >= 1; m--) {
                if (batch % m == 0) {
                    micros.add(m);
                }
            }
        }
        MemoryPlan last = null;
        for (Recompute r : modes) {
            for (int m : micros) {
                last = of(model, new StepShape(batch, seqLen, m, r, chunk, bufferLimit, bf16Stash, matmul), false,
                        actLimit, optimizerShards, exchangeFloats);
                if (last.fits(deviceBytes)) {
                    return last;
                }
            }
        }
        return last;
    }

    /**
     * Training FLOPs per token as MFU counts them: 6 per weight per loop step (the layers, the LM head and the gate),
     * and causal attention, 6 d (S + 1) per layer per loop step (QK^T and AV over S/2 keys on average, forward and
     * backward): {@link StepCounts}' GEMM and attention counts without recomputation.
     */
    public static double modelFlopsPerToken(LoopConfig m, int seqLen) {
        return deviceFlopsPerToken(m, new StepShape(1, seqLen, 1, Recompute.NONE, 0, 0));
    }

    /**
     * FLOPs per token the device runs: the model's, plus the forward passes of the looped block and the LM head that
     * recomputation repeats.
     */
    public double flopsPerToken() {
        return deviceFlopsPerToken(model, shape);
    }

    /** The GEMM and attention FLOPs of one token of a step of this shape ({@link StepCounts}). */
    static double deviceFlopsPerToken(LoopConfig m, StepShape s) {
        return StepCounts.gemm(m, s, 1).flops() + StepCounts.attention(m, s, 1).flops();
    }

    /** One line: the choice, the memory by kind, the FLOPs, and whether it fits {@code deviceBytes}. */
    public String describe(long deviceBytes) {
        if (problem != null) {
            return String.format(Locale.ROOT, "micro-batch %d x %d tokens, recompute %s: DOES NOT FIT: %s",
                    shape.micro(), shape.seqLen(), shape.recompute().yamlName(), problem);
        }
        String fit = this.deviceBytes <= deviceBytes ? String.format(Locale.ROOT, "fits %s", gib(deviceBytes))
                : String.format(Locale.ROOT, "DOES NOT FIT %s", gib(deviceBytes));
        return String.format(Locale.ROOT, "micro-batch %d x %d tokens, recompute %s%s; per worker %s on the device "
                        + "(parameters + gradients + AdamW%s %s in %d segment%s, %sactivations %s in %d buffer%s, stash%s %s "
                        + "in %d buffer%s; %d device buffers, the largest %s), executor heap %s; %.3g FLOP/token (%.3g "
                        + "with recomputation): %s",
                shape.micro(), shape.seqLen(), shape.recompute().yamlName(),
                shape.recompute() == Recompute.NONE ? "" : " in chunks of "
                        + io.ouro.worker.step.StepWorkspace.chunkRows(shape.micro() * shape.seqLen(),
                        shape.recompute(), shape.chunk()) + " rows",
                gib(this.deviceBytes), stateBytes < 16 * parameters ? " moments of this rank's slice (ZeRO-1)" : "",
                gib(stateBytes), paramSegments, paramSegments == 1 ? "" : "s",
                weightCopyBytes > 0 ? "bf16 weight copy " + gib(weightCopyBytes) + ", " : "", gib(activationBytes), actBuffers,
                actBuffers == 1 ? "" : "s", shape.bf16Stash() ? " (bf16)" : "", gib(stashBytes), stashBuffers,
                stashBuffers == 1 ? "" : "s", buffers(), gib(largestBytes), gib(heapBytes),
                modelFlopsPerToken(model, shape.seqLen()), flopsPerToken(), fit);
    }

    /**
     * Device buffers the shape allocates: four per parameter segment (training), five with the weight copy, the
     * activation and stash buffers.
     */
    public int buffers() {
        return (weightCopyBytes > 0 ? 5 : 4) * paramSegments + actBuffers + stashBuffers;
    }

    static String gib(double bytes) {
        return bytes >= (1L << 30) ? String.format(Locale.ROOT, "%.1f GiB", bytes / (1L << 30))
                : String.format(Locale.ROOT, "%.1f MiB", bytes / (1L << 20));
    }
}
