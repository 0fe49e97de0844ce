package io.ouro.worker.opencl;

import java.util.EnumSet;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * Every op the device runs, with its code and the name it is profiled under: the one place both are written.
 *
 * <p>An op the kernel runs from Java (Aparapi's translation) has its {@link Code} in {@link KernelFields#op}; a
 * hand-written OpenCL C op (the {@code CL_} ones) runs under {@link Code#HAND} or {@link Code#PHASES} and is told
 * apart by {@link KernelFields#hand}. The {@code .cl} files name the hand-written ops by the macros
 * {@link #define()} gives ({@code OURO_GEMM_OUTER} ...), which {@link ClKernels#constants()} defines into the
 * program from here; no {@code .cl} file defines them itself (checked by DeviceOpTest).
 *
 * <p>Each op also names its {@link Family}, the kind of kernel it is (what bounds it, how a GPU version is shaped),
 * which the layer benchmark sums the profile by. The constructors take it, so an op without one does not compile.
 */
public enum DeviceOp {
    GEMM(Code.GEMM, "gemm", Family.GEMM),
    FILL(Code.FILL, "fill", Family.ELEMENTWISE),
    ADD(Code.ADD, "residual add", Family.ELEMENTWISE),
    SWIGLU_FWD(Code.SWIGLU_FWD, "swiglu fwd", Family.ELEMENTWISE),
    SWIGLU_BWD(Code.SWIGLU_BWD, "swiglu bwd", Family.ELEMENTWISE),
    RMSNORM_FWD(Code.RMSNORM_FWD, "rmsnorm fwd", Family.REDUCE),
    RMSNORM_BWD_DX(Code.RMSNORM_BWD_DX, "rmsnorm bwd dx", Family.REDUCE),
    RMSNORM_BWD_DW(Code.RMSNORM_BWD_DW, "rmsnorm bwd dw", Family.REDUCE),
    ROPE(Code.ROPE, "rope", Family.ELEMENTWISE),
    EMBED_FWD(Code.EMBED_FWD, "embedding fwd", Family.ELEMENTWISE),
    EMBED_BWD(Code.EMBED_BWD, "embedding bwd", Family.REDUCE),
    ATTN_FWD(Code.ATTN_FWD, "attention fwd", Family.ATTENTION),
    ATTN_BWD_Q(Code.ATTN_BWD_Q, "attention bwd q", Family.ATTENTION),
    ATTN_BWD_KV(Code.ATTN_BWD_KV, "attention bwd kv", Family.ATTENTION),
    CE_FWD(Code.CE_FWD, "cross-entropy fwd", Family.REDUCE),
    CE_BWD(Code.CE_BWD, "cross-entropy bwd", Family.REDUCE),
    BIAS_ADD(Code.BIAS_ADD, "bias add", Family.ELEMENTWISE),
    EXIT(Code.EXIT, "exit objective", Family.REDUCE),
    STEP_MEANS(Code.STEP_MEANS, "step means", Family.REDUCE),
    SUMSQ(Code.SUMSQ, "grad sum squares", Family.OPTIMIZER),
    SCALE(Code.SCALE, "grad scale", Family.OPTIMIZER),
    ADAMW(Code.ADAMW, "adamw", Family.OPTIMIZER),
    SUM_TO_GRAD(Code.SUM_TO_GRAD, "bias grad", Family.REDUCE),
    COPY(Code.COPY, "copy", Family.ELEMENTWISE),
    TRANSPOSE(Code.TRANSPOSE, "transpose", Family.GEMM),
    XCOPY(Code.XCOPY, "stash copy", Family.ELEMENTWISE),
    RANGE_OUT(Code.RANGE_OUT, "range out", Family.TRANSFER),
    RANGE_IN(Code.RANGE_IN, "range in", Family.TRANSFER),
    ROPE_AT(Code.ROPE_AT, "rope at", Family.DECODE),
    ATTN_CACHED(Code.ATTN_CACHED, "attention cached", Family.DECODE),
    MEAN(Code.MEAN, "mean", Family.DECODE),
    TO_METRICS(Code.TO_METRICS, "to metrics", Family.DECODE),
    GEMV(Code.GEMV, "gemv", Family.DECODE),
    RMSNORM_ADD(Code.RMSNORM_ADD, "rmsnorm add", Family.DECODE),

    CL_GEMM_OUTER(Code.HAND, 1, "gemm (OpenCL C)", Family.GEMM),
    CL_GEMM_TILED(Code.HAND, 2, "gemm tiled (OpenCL C)", Family.GEMM),
    CL_PACK(Code.HAND, 3, "gemm pack (OpenCL C)", Family.GEMM),
    CL_ATTN_FWD(Code.HAND, 4, "attention fwd (OpenCL C)", Family.ATTENTION),
    CL_ATTN_BWD_Q(Code.HAND, 5, "attention bwd q (OpenCL C)", Family.ATTENTION),
    CL_ATTN_BWD_KV(Code.HAND, 6, "attention bwd kv (OpenCL C)", Family.ATTENTION),
    CL_DECODE_STEP(Code.PHASES, 7, "decode step (OpenCL C)", Family.DECODE),
    CL_STORE_ROWS(Code.HAND, 8, "store rows (OpenCL C)", Family.DECODE),
    CL_GEMV(Code.HAND, 9, "gemv (OpenCL C)", Family.DECODE),
    CL_STASH16(Code.HAND, 10, "stash copy bf16 (OpenCL C)", Family.ELEMENTWISE),
    /** Profiled as {@link #TC_EMULATED_NAME} on a device that runs the instruction's emulation. */
    CL_GEMM_TC(Code.HAND, 11, "gemm bf16 tensor cores (OpenCL C)", Family.GEMM),
    CL_CE_FWD(Code.HAND, 12, "cross-entropy fwd (OpenCL C)", Family.REDUCE),
    CL_CE_BWD(Code.HAND, 13, "cross-entropy bwd (OpenCL C)", Family.REDUCE),
    CL_GEMM_DOT(Code.HAND, 14, "gemm dot (OpenCL C)", Family.GEMM),
    CL_CE_FWD_WG(Code.HAND, 15, "cross-entropy fwd work-group (OpenCL C)", Family.REDUCE),
    CL_CE_BWD_WG(Code.HAND, 16, "cross-entropy bwd work-group (OpenCL C)", Family.REDUCE),
    CL_RMSNORM_DW_PARTIAL(Code.HAND, 17, "rmsnorm bwd dw partial (OpenCL C)", Family.REDUCE),
    CL_RMSNORM_DW_SUM(Code.HAND, 18, "rmsnorm bwd dw sum (OpenCL C)", Family.REDUCE),
    CL_EMBED_BWD(Code.HAND, 22, "embedding bwd by token (OpenCL C)", Family.REDUCE),
    CL_FLASH_FWD(Code.HAND, 19, "attention fwd (flash, OpenCL C)", Family.ATTENTION),
    CL_FLASH_BWD_Q(Code.HAND, 20, "attention bwd q (flash, OpenCL C)", Family.ATTENTION),
    CL_FLASH_BWD_KV(Code.HAND, 21, "attention bwd kv (flash, OpenCL C)", Family.ATTENTION),
    /** The weights' bfloat16 copy refreshed from the fp32 master (after the optimizer step, a load, an all-gather). */
    CL_WEIGHT_BF16(Code.HAND, 23, "weight copy bf16 (OpenCL C)", Family.OPTIMIZER),
    /** An activation range rounded to bfloat16 once for the tensor-core products that read it ({@link GemmOps}). */
    CL_ACT_BF16(Code.HAND, 24, "activation copy bf16 (OpenCL C)", Family.GEMM);

    /**
     * The kind of kernel an op is, for the time, FLOP and bytes the layer benchmark reports per kind
     * ({@code io.ouro.worker.backend.StepCounts} counts them from the shapes). {@link #DECODE}: the ops only generation
     * runs; {@link #TRANSFER}: copies to and from the exchange buffer of the data-parallel step.
     */
    public enum Family {
        GEMM, ATTENTION, REDUCE, ELEMENTWISE, OPTIMIZER, DECODE, TRANSFER;

        /** The lower-case name the benchmarks print ({@code gemm_ms=...}). */
        public String key() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** Profile name of {@link #CL_GEMM_TC} where the device runs its emulation (no tensor-core instruction). */
    public static final String TC_EMULATED_NAME = "gemm bf16 mma emulated (OpenCL C)";

    /**
     * The values of {@link KernelFields#op}. Compile-time constants, because Aparapi translates {@code op == Code.FILL}
     * only with the literal in the bytecode; each is written here once and named by its enum constant.
     */
    static final class Code {
        static final int GEMM = 1, FILL = 2, ADD = 3, SWIGLU_FWD = 4, SWIGLU_BWD = 5, RMSNORM_FWD = 6,
                RMSNORM_BWD_DX = 7, RMSNORM_BWD_DW = 8, ROPE = 9, EMBED_FWD = 10, EMBED_BWD = 11, ATTN_FWD = 12,
                ATTN_BWD_Q = 13, ATTN_BWD_KV = 14, CE_FWD = 15, CE_BWD = 16, BIAS_ADD = 17, EXIT = 18,
                STEP_MEANS = 19, SUMSQ = 20, SCALE = 21, ADAMW = 22, SUM_TO_GRAD = 23, COPY = 24, TRANSPOSE = 26,
                XCOPY = 27, RANGE_OUT = 28, RANGE_IN = 29;
        /** Decoding one token over a KV cache ({@link OpenClDecodeOps}). */
        static final int ROPE_AT = 30, ATTN_CACHED = 31, MEAN = 32, TO_METRICS = 33, GEMV = 34, RMSNORM_ADD = 35;
        /** A hand-written OpenCL C op, {@link KernelFields#hand} says which. */
        static final int HAND = 36;
        /** A hand-written op run in phases, a barrier after each ({@link KernelFields#phases}). */
        static final int PHASES = 37;

        private Code() {
        }
    }

    private static final Map<Long, DeviceOp> BY_CODE = new HashMap<>();

    /**
     * The ops that use the kernel's local-memory tiles ({@link KernelFields#tileA}, {@code tileB}: 2 x 64 x 65 floats,
     * 33 KB). Every other op is launched with one-float tiles, so that its work-groups do not reserve local memory
     * they never touch (on a GPU it would cap how many of them an SM holds). DeviceOpTest derives the set from the
     * program's source and fails if it differs from this one.
     */
    private static final Set<DeviceOp> LOCAL_TILES = EnumSet.of(GEMM, CL_GEMM_TILED, CL_GEMM_TC, CL_CE_FWD_WG,
            CL_FLASH_FWD, CL_FLASH_BWD_Q, CL_FLASH_BWD_KV);

    static {
        for (DeviceOp o : values()) {
            if (BY_CODE.put(key(o.code, o.hand), o) != null) {
                throw new ExceptionInInitializerError("two device ops with code " + o.code + ", hand " + o.hand);
            }
        }
    }

    /** The value of {@link KernelFields#op} that runs it. */
    final int code;
    /** The value of {@link KernelFields#hand} (a hand-written op), 0 for a translated one. */
    final int hand;
    private final String profileName;
    private final Family family;

    DeviceOp(int code, String profileName, Family family) {
        this(code, 0, profileName, family);
    }

    DeviceOp(int code, int hand, String profileName, Family family) {
        this.code = code;
        this.hand = hand;
        this.profileName = profileName;
        this.family = family;
    }

    /** The name launches of this op are profiled under ({@link OpenClOps#profile()}). */
    public String profileName() {
        return profileName;
    }

    /** Whether this op reads or writes the local-memory tiles (it is launched with them at full size). */
    public boolean localTiles() {
        return LOCAL_TILES.contains(this);
    }

    /** The kind of kernel this op is. */
    public Family family() {
        return family;
    }

    /**
     * The family of the op a profile entry ({@link OpenClOps#profile()}) is named after: its profile name, the emulated
     * tensor-core GEMM's ({@link #TC_EMULATED_NAME}), or a GEMM's name with its shape after it (a profile by shape).
     *
     * @throws IllegalArgumentException for a name no op is profiled under
     */
    public static Family familyOf(String profileEntry) {
        if (profileEntry.equals(TC_EMULATED_NAME) || profileEntry.startsWith(TC_EMULATED_NAME + " ")) {
            return CL_GEMM_TC.family;
        }
        DeviceOp best = null;
        for (DeviceOp o : values()) {
            String n = o.profileName;
            if ((profileEntry.equals(n) || o.gemm() && profileEntry.startsWith(n + " "))
                    && (best == null || n.length() > best.profileName.length())) {
                best = o;
            }
        }
        if (best == null) {
            throw new IllegalArgumentException("no device op is profiled as '" + profileEntry + "'");
        }
        return best.family;
    }

    /** Whether this op is hand-written OpenCL C (as opposed to Java that Aparapi translates). */
    public boolean handWritten() {
        return hand != 0;
    }

    /** The macro the {@code .cl} files name a hand-written op by, defined by {@link ClKernels#constants()}. */
    public String define() {
        if (!handWritten()) {
            throw new IllegalStateException(this + " is translated from Java and has no OpenCL C macro");
        }
        return "OURO_" + name().substring("CL_".length());
    }

    /** Whether this is one of the GEMM kernels (profiled by shape where asked). */
    boolean gemm() {
        return this == GEMM || this == CL_GEMM_OUTER || this == CL_GEMM_TILED || this == CL_GEMM_TC
                || this == CL_GEMM_DOT;
    }

    /** The op the kernel's {@code op} and {@code hand} fields select. */
    static DeviceOp of(int code, int hand) {
        DeviceOp o = BY_CODE.get(key(code, code == Code.HAND || code == Code.PHASES ? hand : 0));
        if (o == null) {
            throw new IllegalStateException("no device op has code " + code + " and hand " + hand);
        }
        return o;
    }

    private static long key(int code, int hand) {
        return (long) code << 32 | hand;
    }
}
