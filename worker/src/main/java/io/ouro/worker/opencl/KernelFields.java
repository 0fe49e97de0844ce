package io.ouro.worker.opencl;

import com.aparapi.Kernel;

/**
 * The fields of {@link LoopKernel}: its device buffers and the registers an op reads its arguments from.
 *
 * <p>LoopKernel is one Aparapi kernel written in several classes, each a superclass of the next: this one (fields),
 * {@link BufferAccess} (reading and writing the buffers), the op bodies ({@link LayerKernels}, {@link AttentionKernels},
 * {@link LossKernels}, {@link OptimizerKernels}, {@link DecodeKernels}) and LoopKernel itself ({@code run()}, the GEMM).
 * Aparapi translates one class's {@code run()} and every method it reaches in the class and its superclasses into one
 * OpenCL program, so all ops share one set of device buffers (Aparapi keeps device buffers per Kernel instance).
 *
 * <p>Every op has a host-side setter beside its body ({@code setFill(...)} beside {@code fill(gx)}) that takes named
 * arguments and puts them into the registers below; {@code run()} never reaches a setter, so Aparapi never translates
 * one. The registers' meaning per op is written only in its setter.
 *
 * <p>Buffers: {@code w0..w7} parameters, {@code g0..g7} gradients, {@code ma0..ma7}/{@code mb0..mb7} Adam's moments
 * (one per parameter segment), {@code act0..act7} the activation arena (every activation is a region at a global
 * offset, see {@link #ACT_SHIFT}), {@code s0..s15} the stash, {@code wh0..wh7} the weights' bfloat16 copy. Every
 * buffer stays below Aparapi 3.0.2's limit: it sizes buffers in a 32-bit int of bytes, so an array of 2^29 floats or
 * more would wrap (see {@link HostArrays#MAX_FLOATS}).
 */
public abstract class KernelFields extends Kernel {

    /** Work-group side of the translated GEMM (8 x 32 items, 64 x 64 outputs) and the depth of its K slices. */
    static final int TILE_X = 8, TILE_Y = 32, K_TILE = 64;
    /** Stash buffers: hidden states kept across layers, reached only by the stash copy (slot 1 + index). */
    static final int STASH_SLOTS = 16;
    /** Parameter segments (each with its gradient and moments) the kernel addresses. */
    static final int SEGMENTS = 8;
    /**
     * The activation arena's windows: a global offset g is element {@code g & ACT_MASK} of window
     * {@code g >> ACT_SHIFT}, each window one buffer of at most ACT_WINDOW floats (1 GiB), at most ACT_PIECES of them
     * (2^31 floats in all, the reach of an int offset).
     */
    static final int ACT_SHIFT = 28, ACT_WINDOW = 1 << ACT_SHIFT, ACT_MASK = ACT_WINDOW - 1, ACT_PIECES = 8;
    /** GEMM and fill operand selectors: parameters and gradients of a segment (+ segment), the activations. */
    static final int SEL_PARAMS = 0, SEL_GRADS = 8, SEL_ACT = 16;

    float[] w0 = new float[1], w1 = new float[1], w2 = new float[1], w3 = new float[1];
    float[] w4 = new float[1], w5 = new float[1], w6 = new float[1], w7 = new float[1];
    float[] g0 = new float[1], g1 = new float[1], g2 = new float[1], g3 = new float[1];
    float[] g4 = new float[1], g5 = new float[1], g6 = new float[1], g7 = new float[1];
    float[] ma0 = new float[1], ma1 = new float[1], ma2 = new float[1], ma3 = new float[1];
    float[] ma4 = new float[1], ma5 = new float[1], ma6 = new float[1], ma7 = new float[1];
    float[] mb0 = new float[1], mb1 = new float[1], mb2 = new float[1], mb3 = new float[1];
    float[] mb4 = new float[1], mb5 = new float[1], mb6 = new float[1], mb7 = new float[1];
    float[] act0 = new float[1], act1 = new float[1], act2 = new float[1], act3 = new float[1];
    float[] act4 = new float[1], act5 = new float[1], act6 = new float[1], act7 = new float[1];
    float[] ropeCos = new float[1];
    float[] ropeSin = new float[1];

    float[] metrics = new float[1];
    int[] tok = new int[1];
    float[] s0 = new float[1], s1 = new float[1], s2 = new float[1], s3 = new float[1];
    float[] s4 = new float[1], s5 = new float[1], s6 = new float[1], s7 = new float[1];
    float[] s8 = new float[1], s9 = new float[1], s10 = new float[1], s11 = new float[1];
    float[] s12 = new float[1], s13 = new float[1], s14 = new float[1], s15 = new float[1];
    int[] tgt = new int[1];
    /**
     * The weights' bfloat16 copy for the tensor-core GEMM (train.matmul bf16_tensor): one per parameter segment, 16-bit
     * values two per float at the parameter's own offset, refreshed from {@code w0..w7} before a product reads a segment
     * changed since ({@link GemmOps}); device-only, as the stash.
     */
    float[] wh0 = new float[1], wh1 = new float[1], wh2 = new float[1], wh3 = new float[1];
    float[] wh4 = new float[1], wh5 = new float[1], wh6 = new float[1], wh7 = new float[1];
    /**
     * The exchange buffer: a range of the parameters or gradients on its way to or from the host (a gradient bucket
     * for the all-reduce, a parameter slice for ZeRO's all-gather), so that only the range crosses the bus.
     */
    float[] xg = new float[1];

    @Local
    float[] tileA = new float[64 * (K_TILE + 1)];
    @Local
    float[] tileB = new float[64 * (K_TILE + 1)];

    /** Which op runs: a {@link DeviceOp.Code}. */
    int op;
    /** Which hand-written op {@link DeviceOp.Code#HAND} runs ({@link DeviceOp#hand}). */
    int hand;
    /**
     * Elements per work item of the elementwise ops (fill, add, copy, scale, SwiGLU, AdamW): 1 on a GPU,
     * a contiguous run on a CPU device, where per-item overhead dominates and a run vectorizes.
     */
    int chunk = 1;
    /** Trip count of the barrier loop: K slices for the translated GEMM, 0 for every other op. */
    int tiles;
    /** Trip count of the phase loop: the phases of {@link DeviceOp.Code#PHASES}, 0 for every other op. */
    int phases;
    // GEMM: C(i,j) (= or +=) sum_k A(i,k) B(j,k); element (r,c) of X is at xOff + r*xRs + c*xCs in the buffer xSel
    int gm, gn, gk, accumulate;
    int aSel, aOff, aRs, aCs, bSel, bOff, bRs, bCs, cSel, cOff, cRs, cCs;
    /**
     * The tensor-core GEMM's operands as bfloat16 ({@link GemmOps}): 0 fp32 at xOff in the buffer xSel; 1 (B only) the
     * bfloat16 copy {@code wh<bSel>} of the parameter segment bSel, at bOff; 2 a bfloat16 copy of an activation range
     * in the activation arena, starting at the global (float) offset xOff.
     */
    int aCopy, bCopy;
    // the other ops' registers, named by each op's setter
    int n0, n1, n2, n3, o0, o1, o2, o3, o4, o5, o6, o7, o8;
    /** Parameter segment of the op's tensor (embedding, norm weights, the gate bias, AdamW, gradient norms, GEMV). */
    int pseg;
    float f0, f1, f2, f3, f4, f5;

    /** Starts setting an op: its code, and no hand-written op, barrier loop or phases unless its setter says so. */
    final void begin(DeviceOp o) {
        op = o.code;
        hand = o.hand;
        tiles = 0;
        phases = 0;
        chunk = 1;
    }

    /** The op set now. */
    final DeviceOp current() {
        return DeviceOp.of(op, hand);
    }
}
