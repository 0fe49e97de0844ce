package io.ouro.worker.opencl;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.model.MatmulPrecision;

/**
 * The device side of the OpenCL backend: one {@link LoopKernel} in explicit-buffer mode over the
 * parameter, gradient and activation buffers, and one method per op. Buffers stay on the device
 * between ops; {@link #upload}/{@link #download} move them, and {@link Residency} checks that no op
 * reads a stale copy. All offsets and sizes are in floats.
 */
public final class OpenClOps implements AutoCloseable {

    /**
     * A device buffer: the parameters, gradients or Adam moments of parameter segment {@code index} (at most
     * {@link #PARAM_SEGMENTS}); the activation arena (one buffer for residency, however many windows it spans); the
     * metrics; the token and target ids; the stash buffers (device only); the exchange buffer.
     */
    public record Buffer(Kind kind, int index) {

        public enum Kind { PARAMS, GRADS, MOM1, MOM2, ACT, METRICS, TOKENS, TARGETS, STASH, EXCHANGE }

        public static final Buffer PARAMS = new Buffer(Kind.PARAMS, 0), GRADS = new Buffer(Kind.GRADS, 0),
                MOM1 = new Buffer(Kind.MOM1, 0), MOM2 = new Buffer(Kind.MOM2, 0), ACT = new Buffer(Kind.ACT, 0),
                METRICS = new Buffer(Kind.METRICS, 0), TOKENS = new Buffer(Kind.TOKENS, 0),
                TARGETS = new Buffer(Kind.TARGETS, 0), STASH = new Buffer(Kind.STASH, 0),
                EXCHANGE = new Buffer(Kind.EXCHANGE, 0);

        public Buffer {
            if (index < 0 || index >= (segmented(kind) ? LoopKernel.SEGMENTS : 1)) {
                throw new IllegalArgumentException(kind + " has no buffer " + index);
            }
        }

        private static boolean segmented(Kind k) {
            return k == Kind.PARAMS || k == Kind.GRADS || k == Kind.MOM1 || k == Kind.MOM2;
        }

        /** Gradients and moments: absent from a forward-only model. */
        boolean trainingOnly() {
            return kind == Kind.GRADS || kind == Kind.MOM1 || kind == Kind.MOM2;
        }

        /** The operand selector of the GEMM, fill and transpose ({@link LoopKernel#SEL_PARAMS} ...). */
        int selector() {
            return switch (kind) {
                case PARAMS -> LoopKernel.SEL_PARAMS + index;
                case GRADS -> LoopKernel.SEL_GRADS + index;
                case ACT -> LoopKernel.SEL_ACT;
                default -> throw new IllegalArgumentException(this + " is not a GEMM, fill or transpose operand");
            };
        }

        @Override
        public String toString() {
            return index == 0 ? kind.name() : kind.name() + index;
        }
    }

    private static final int GROUP = 64;
    /** Work items of an elementwise op on a CPU device: a few per core is enough, more only adds overhead. */
    private static final int CPU_ITEMS = 4096;

    /** Parameter segments the kernel can address (w0..w7 and their gradients and moments). */
    public static final int PARAM_SEGMENTS = LoopKernel.SEGMENTS;
    /** The activation arena's windows: at most this many floats each, a region never straddling two. */
    public static final int ACT_WINDOW = LoopKernel.ACT_WINDOW;
    /** The activation arena's windows at most. */
    public static final int ACT_PIECES = LoopKernel.ACT_PIECES;

    private final LoopKernel k = new LoopKernel();
    /** False for a forward-only model: no gradient or moment buffers. */
    private final boolean training;
    private final int[] segments;
    /** Floats of the buffers as sized (their arrays may be longer: see {@link HostArrays}). */
    private long logicalFloats;
    private final java.util.Map<Buffer, Long> sizes = new java.util.HashMap<>();
    /** The host array of every float buffer but the activation arena and the stash. */
    private final java.util.Map<Buffer, float[]> arrays = new java.util.HashMap<>();
    /** The activation arena's windows (at most {@link LoopKernel#ACT_PIECES}). */
    private float[][] act;
    private final OpenCLDevice device;
    private final boolean cpuDevice;
    private final Residency residency = new Residency();
    private long bytesUp, bytesDown;
    private java.util.Map<String, long[]> profile;
    private boolean profileShapes;

    private static final String[] OP_NAMES = {"none", "gemm", "fill", "residual add", "swiglu fwd", "swiglu bwd",
            "rmsnorm fwd", "rmsnorm bwd dx", "rmsnorm bwd dw", "rope", "embedding fwd", "embedding bwd",
            "attention fwd", "attention bwd q", "attention bwd kv", "cross-entropy fwd", "cross-entropy bwd",
            "bias add", "exit objective", "step means", "grad sum squares", "grad scale", "adamw", "bias grad",
            "copy", "(unused)", "transpose", "stash copy", "range out", "range in", "rope at", "attention cached", "mean",
            "to metrics", "gemv", "rmsnorm add", "gemm (OpenCL C)"};
    private static final String PACK_NAME = "gemm pack (OpenCL C)";
    /** Profile name of the CPU GEMM as dot products (the layouts the register-blocked GEMM declines). */
    public static final String DOT_NAME = "gemm dot (OpenCL C)";
    /** Profile names of the tensor-core GEMM: the instruction, or its emulation (any device without the probe's yes). */
    public static final String TC_NAME = "gemm bf16 tensor cores (OpenCL C)",
            TC_EMULATED_NAME = "gemm bf16 mma emulated (OpenCL C)";

    /**
     * Which kernel {@link #gemm} runs: AUTO picks the hand-written OpenCL C ({@link ClKernels}) for the device (the
     * register-blocked one on a CPU, the tiled one elsewhere, the tensor-core one where the device passed
     * {@link TensorCores#probe} under bf16_tensor); OUTER, TILED and TENSOR force one (parity tests, benchmarks;
     * TENSOR without the probe's yes runs the instruction's emulation, gemm_tc.cl); DOT forces, on a CPU device, the
     * dot-product kernel that AUTO uses for the layouts the register-blocked one declines (operands that are not
     * k-contiguous transposed into the scratch first); TRANSLATED is the Java kernel Aparapi translates, the
     * reference twin.
     */
    public enum GemmKernel { AUTO, OUTER, TILED, TRANSLATED, TENSOR, DOT }

    private GemmKernel gemmKernel = GemmKernel.AUTO;
    /**
     * Whether attention runs the hand-written OpenCL C kernels (default on CPU devices: their per-item
     * accumulators, OURO_AQ x 128 floats, suit a CPU's stack, not a GPU's registers) or the translated twin.
     */
    private boolean handAttention;
    /** Whether {@link #gemv} runs the hand-written OpenCL C (default on CPU devices) or the translated twin. */
    private boolean handGemv;
    /** Cross-entropy on the hand-written OpenCL C kernels (xent.cl): the CPU default. */
    private boolean handCrossEntropy;
    /** Work-group of the register-blocked GEMM on a CPU device, in micro-tiles (tuned on pocl: see docs/opencl.md). */
    private static final int OUTER_GROUP_X = 4, OUTER_GROUP_Y = 4;
    /** Rows of C from which the register-blocked GEMM packs B (below, B is read in place or the twin runs). */
    private static final int PACK_MIN_ROWS = 512;
    /**
     * Longest k the register-blocked GEMM walks in one launch when it reads its operands in place: a longer product
     * (the LM head's input gradient, k = vocab) runs as launches over k-slices accumulating into C, so each slice of
     * A and B stays in the last-level cache while every micro-tile walks it (see README, OpenCL C kernels).
     */
    private int outerKChunk = 4096;
    private boolean outerSwap = true;
    /** Whether this device runs gemm_tc.cl with the tensor-core instruction (TensorCores' probe passed). */
    private final boolean tensorCores;
    /** The products' precision ({@code train.matmul}): AUTO runs the tensor-core GEMM only for BF16_TENSOR. */
    private final MatmulPrecision matmul;

    /** Allocates the buffers and compiles the kernel for {@code device}; fails if it does not run as OpenCL. */
    public OpenClOps(OpenCLDevice device, int paramSize, int actSize) {
        this(device, paramSize, actSize, 1, 1);
    }

    /**
     * @param metricsSize floats of per-step outputs (per-token losses, per-step sums, norm partials)
     * @param rows        tokens per step (the size of the token and target buffers)
     */
    public OpenClOps(OpenCLDevice device, int paramSize, int actSize, int metricsSize, int rows) {
        this(device, new int[]{paramSize}, actSize, metricsSize, rows, new int[0]);
    }

    /**
     * @param paramSegments floats of each parameter segment (one to {@link #PARAM_SEGMENTS}), each with its gradient
     *                      and moments
     * @param stashSizes    floats of each stash buffer (at most {@link LoopKernel#STASH_SLOTS}), reached by
     *                      {@link #copyAcross}
     */
    public OpenClOps(OpenCLDevice device, int[] paramSegments, long actSize, int metricsSize, int rows, int[] stashSizes) {
        this(device, paramSegments, actSize, metricsSize, rows, stashSizes, true);
    }

    /**
     * @param actSize  floats of the activation arena, at global offsets [0, actSize): windows of
     *                 {@link #ACT_WINDOW} floats, each its own device buffer
     * @param training false for a forward-only model (evaluation, decoding): no gradient and no Adam moment buffers
     *                 are allocated (one-float placeholders), and an op that would touch them is an error
     */
    public OpenClOps(OpenCLDevice device, int[] paramSegments, long actSize, int metricsSize, int rows, int[] stashSizes,
                     boolean training) {
        this(device, paramSegments, actSize, metricsSize, rows, stashSizes, training, MatmulPrecision.FP32);
    }

    /** @param matmul the products' precision (see {@link ClKernels#install(MatmulPrecision, OpenCLDevice)}) */
    public OpenClOps(OpenCLDevice device, int[] paramSegments, long actSize, int metricsSize, int rows, int[] stashSizes,
                     boolean training, MatmulPrecision matmul) {
        HostArrays.requireCollector(); // before any array is handed to the driver
        this.training = training;
        if (stashSizes.length > LoopKernel.STASH_SLOTS) {
            throw new IllegalArgumentException(stashSizes.length + " stash buffers, at most " + LoopKernel.STASH_SLOTS);
        }
        if (paramSegments.length < 1 || paramSegments.length > PARAM_SEGMENTS) {
            throw new IllegalArgumentException(paramSegments.length + " parameter segments, the kernel has 1.."
                    + PARAM_SEGMENTS + " (at most " + (long) PARAM_SEGMENTS * HostArrays.MAX_FLOATS + " parameters)");
        }
        long actLimit = (long) LoopKernel.ACT_PIECES * ACT_WINDOW;
        if (actSize < 1 || actSize > actLimit) {
            throw new IllegalArgumentException("an activation arena of " + actSize + " floats; the kernel addresses 1.."
                    + actLimit);
        }
        this.device = device;
        this.cpuDevice = device.getType() == com.aparapi.device.Device.TYPE.CPU;
        this.handAttention = cpuDevice;
        this.handGemv = cpuDevice;
        this.handCrossEntropy = cpuDevice;
        this.segments = paramSegments.clone();
        DeviceMemory.configure(device);
        // every buffer's array, the kernel's one-element placeholders included, is one the collector never moves
        for (int seg = 0; seg < PARAM_SEGMENTS; seg++) {
            int n = seg < paramSegments.length ? paramSegments[seg] : 1;
            int t = training ? n : 1;
            allocate(new Buffer(Buffer.Kind.PARAMS, seg), n);
            allocate(new Buffer(Buffer.Kind.GRADS, seg), t);
            allocate(new Buffer(Buffer.Kind.MOM1, seg), t);
            allocate(new Buffer(Buffer.Kind.MOM2, seg), t);
        }
        int pieces = (int) ((actSize + ACT_WINDOW - 1) / ACT_WINDOW);
        act = new float[LoopKernel.ACT_PIECES][];
        for (int i = 0; i < act.length; i++) {
            int n = i < pieces ? (int) Math.min(ACT_WINDOW, actSize - (long) i * ACT_WINDOW) : 1;
            act[i] = HostArrays.floats(n);
            bind("act" + i, act[i]);
            guard("act" + i, act[i], n);
        }
        sizes.put(Buffer.ACT, actSize);
        allocate(Buffer.METRICS, metricsSize);
        allocate(Buffer.EXCHANGE, 1);
        k.tok = HostArrays.ints(rows);
        k.tgt = HostArrays.ints(rows);
        guard("tok", k.tok, rows);
        guard("tgt", k.tgt, rows);
        sizes.put(Buffer.TOKENS, (long) rows);
        sizes.put(Buffer.TARGETS, (long) rows);
        k.ropeCos = HostArrays.floats(1);
        k.ropeSin = HostArrays.floats(1);
        long stash = 0;
        for (int i = 0; i < LoopKernel.STASH_SLOTS; i++) {
            int n = i < stashSizes.length ? stashSizes[i] : 1;
            setStash(i, HostArrays.floats(n), n);
            stash += n;
        }
        sizes.put(Buffer.STASH, stash);
        // every buffer as sized, the placeholders of unused windows and the two rope tables included
        logicalFloats = (LoopKernel.ACT_PIECES - pieces) + 2;
        for (long n : sizes.values()) {
            logicalFloats += n;
        }
        k.setExplicit(true);
        // the tensor-core instruction goes into the program only for bf16_tensor on a device that ran it in the probe
        this.matmul = matmul;
        this.tensorCores = ClKernels.install(matmul, device);
        KernelCheck.requireOpenCl(k, device);
    }

    // a float buffer's host array, bound to its kernel field
    private void allocate(Buffer b, int n) {
        float[] a = HostArrays.floats(n);
        arrays.put(b, a);
        sizes.put(b, (long) n);
        bind(field(b), a);
        guard(field(b), a, n);
    }

    /** Test-only canary mode ({@link HostArrays#CANARY}): the arrays whose canaries are checked, by kernel field. */
    private final java.util.Map<String, Object[]> guarded = new java.util.LinkedHashMap<>();

    private void guard(String field, Object array, int n) {
        guarded.put(field, new Object[]{array, n});
    }

    /**
     * In canary mode: fails when a kernel wrote past a buffer's logical end. On a device that aliases host memory the
     * check runs after every launch; in copy mode after every download, which brings the device's padding back too.
     */
    private void checkCanaries(String after) {
        if (!HostArrays.CANARY) {
            return;
        }
        for (var e : guarded.entrySet()) {
            Object a = e.getValue()[0];
            int n = (int) e.getValue()[1];
            if (!HostArrays.canaryIntact(a, n)) {
                throw new IllegalStateException(after + " wrote past the end of buffer " + e.getKey() + " (" + n
                        + " elements)");
            }
        }
    }

    /**
     * Bytes of the buffers the kernel holds, measured from its arrays' canaries (canary mode only): every array field
     * of LoopKernel but the local-memory tiles.
     */
    public long heldBytes() {
        long bytes = 0;
        for (java.lang.reflect.Field f : LoopKernel.class.getDeclaredFields()) {
            if (f.isAnnotationPresent(com.aparapi.Kernel.Local.class) || !f.getType().isArray()) {
                continue;
            }
            try {
                bytes += 4L * HostArrays.logicalLength(f.get(k));
            } catch (IllegalAccessException e) {
                throw new IllegalStateException(e);
            }
        }
        return bytes;
    }

    private static String field(Buffer b) {
        return switch (b.kind()) {
            case PARAMS -> "w" + b.index();
            case GRADS -> "g" + b.index();
            case MOM1 -> "ma" + b.index();
            case MOM2 -> "mb" + b.index();
            case METRICS -> "metrics";
            case EXCHANGE -> "xg";
            default -> throw new IllegalArgumentException(b + " has no single float array");
        };
    }

    // the kernel's field of that name now holds a (at allocation: a field's new array gets a new device buffer)
    private void bind(String name, float[] a) {
        try {
            LoopKernel.class.getDeclaredField(name).set(k, a);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("LoopKernel has no buffer field " + name, e);
        }
    }

    public OpenCLDevice device() {
        return device;
    }

    /** The kernel behind the ops, for {@link GpuFacts}' queries of the compiled program (work-group, memory). */
    LoopKernel kernel() {
        return k;
    }

    /** True when the last launch ran as OpenCL on the device (never on Aparapi's Java thread pool). */
    public boolean isRunningOpenCl() {
        return k.isRunningCL();
    }

    public Residency residency() {
        return residency;
    }

    /** The host array of a buffer; after writing into it call {@link #upload}, before reading it {@link #download}. */
    public float[] host(Buffer b) {
        return floats(b);
    }

    /** The host copy of act[off, off + count), a range within one window (a region), checked to be current. */
    public float[] readHostAct(int off, int count) {
        residency.requireHost(Buffer.ACT);
        int l = windowOffset(off, count);
        return java.util.Arrays.copyOfRange(act[off / ACT_WINDOW], l, l + count);
    }

    /** Writes values into the host copy at act[off, ...) (within one window); upload it after. */
    public void writeHostAct(int off, float[] values) {
        int l = windowOffset(off, values.length);
        System.arraycopy(values, 0, act[off / ACT_WINDOW], l, values.length);
        residency.set(Buffer.ACT, Residency.Side.HOST);
    }

    private int windowOffset(int off, int count) {
        int l = off % ACT_WINDOW;
        if (off < 0 || (long) l + count > ACT_WINDOW) {
            throw new IllegalArgumentException("act[" + off + ", +" + count + ") is not inside one activation window");
        }
        return l;
    }

    /** Window {@code i} of the activation arena's host copy: global offsets [i * ACT_WINDOW, + its length). */
    public float[] actWindow(int i) {
        return act[i];
    }

    /** Windows the activation arena spans. */
    public int actWindows() {
        return (int) ((sizes.get(Buffer.ACT) + ACT_WINDOW - 1) / ACT_WINDOW);
    }

    /** The host int array of the TOKENS or TARGETS buffer. */
    public int[] hostInts(Buffer b) {
        return ints(b);
    }

    /** The host copy of b, checked to be current. */
    public float[] read(Buffer b) {
        residency.requireHost(b);
        return floats(b);
    }

    /** Marks b as changed on the host (the device copy is now stale). */
    public void hostWrote(Buffer b) {
        residency.set(b, Residency.Side.HOST);
    }

    /**
     * Buffers uploaded since the last launch. Aparapi's explicit {@code put} only marks an array: the copy to the device
     * happens at the next launch, while {@code get} copies at once. So until a launch, the host copy of these is the
     * truth and the device's is stale, and a download would overwrite the host with it (invisible where the device
     * aliases host memory; on a GPU the upload is lost: found by the copy-mode tests).
     */
    private final java.util.Set<Buffer> pendingUploads = new java.util.HashSet<>();

    public void upload(Buffer b) {
        pendingUploads.add(b);
        if (b.equals(Buffer.TOKENS) || b.equals(Buffer.TARGETS)) {
            k.put(ints(b));
        } else if (b.equals(Buffer.ACT)) {
            for (int i = 0; i < actWindows(); i++) {
                k.put(act[i]);
            }
        } else {
            k.put(floats(b));
        }
        bytesUp += 4L * sizes.get(b);
        residency.set(b, Residency.Side.BOTH);
    }

    public void download(Buffer b) {
        if (pendingUploads.contains(b)) {
            // the host copy is newer than the device's until the next launch carries it over
            residency.set(b, Residency.Side.BOTH);
            return;
        }
        if (b.equals(Buffer.ACT)) {
            for (int i = 0; i < actWindows(); i++) {
                k.get(act[i]);
            }
        } else {
            k.get(floats(b));
        }
        bytesDown += 4L * sizes.get(b);
        residency.set(b, Residency.Side.BOTH);
        checkCanaries("a download of " + b + " showed that a kernel");
    }

    /**
     * Bytes of every buffer the kernel holds on the device as sized (each mirrored by a Java array on the host); the
     * arrays are at least half a G1 region each ({@link HostArrays}), which adds up to 30 such halves.
     */
    public long deviceBytes() {
        return 4 * logicalFloats;
    }

    /** Bytes moved host to device and device to host since the start. */
    public long bytesUploaded() {
        return bytesUp;
    }

    public long bytesDownloaded() {
        return bytesDown;
    }

    public void setRopeTables(float[] cos, float[] sin) {
        k.ropeCos = HostArrays.floats(cos.length);
        k.ropeSin = HostArrays.floats(sin.length);
        guard("ropeCos", k.ropeCos, cos.length);
        guard("ropeSin", k.ropeSin, sin.length);
        System.arraycopy(cos, 0, k.ropeCos, 0, cos.length);
        System.arraycopy(sin, 0, k.ropeSin, 0, sin.length);
        k.put(k.ropeCos);
        k.put(k.ropeSin);
        bytesUp += 4L * (cos.length + sin.length);
        logicalFloats += cos.length + sin.length - 2;
    }

    // C(i,j) (= or +=) sum_k A(i,k) B(j,k), C (m,n), with element (r,c) of X at xOff + r*xRs + c*xCs
    public void gemm(Buffer c, int cOff, int cRs, int cCs, Buffer a, int aOff, int aRs, int aCs,
                     Buffer b, int bOff, int bRs, int bCs, int m, int n, int kk, boolean accumulate) {
        reads(a, b, c);
        if (gemmKernel != GemmKernel.TRANSLATED && gemmKernel != GemmKernel.DOT
                && handGemm(c, cOff, cRs, cCs, a, aOff, aRs, aCs, b, bOff, bRs, bCs, m, n, kk, accumulate)) {
            return;
        }
        k.op = LoopKernel.OP_GEMM;
        k.tiles = (kk + LoopKernel.K_TILE - 1) / LoopKernel.K_TILE;
        setGemmFields(c, cOff, cRs, cCs, a, aOff, aRs, aCs, b, bOff, bRs, bCs, m, n, kk, accumulate);
        // On a CPU device the layouts the register-blocked GEMM declines run as plain dot products over k
        // (gemm.cl's ouro_gemm_dot), which pocl vectorizes (about 2.4x the tiled kernel there): operands that are not
        // k-contiguous are first transposed into the scratch region. GPUs, products whose operands do not fit the
        // scratch, and the translated twin (TRANSLATED) take the translated tiled kernel.
        boolean dot = cpuDevice && gemmKernel != GemmKernel.TRANSLATED;
        if (dot && (aCs != 1 || bCs != 1) && transposeScratch >= 0 && (aCs == 1 || aRs == 1)
                && (bCs == 1 || bRs == 1) && readable(a) && readable(b)
                && (aCs == 1 ? 0L : (long) m * kk) + (bCs == 1 ? 0L : (long) n * kk) <= transposeScratchSize) {
            int at = transposeScratch, bt = transposeScratch + (aCs == 1 ? 0 : m * kk);
            if (aCs != 1) {
                transpose(at, a, aOff, kk, m, aCs);
            }
            if (bCs != 1) {
                transpose(bt, b, bOff, kk, n, bCs);
            }
            gemm(c, cOff, cRs, cCs, aCs == 1 ? a : Buffer.ACT, aCs == 1 ? aOff : at, aCs == 1 ? aRs : kk, 1,
                    bCs == 1 ? b : Buffer.ACT, bCs == 1 ? bOff : bt, bCs == 1 ? bRs : kk, 1, m, n, kk, accumulate);
            return;
        }
        if (dot && aCs == 1 && bCs == 1 && a.equals(Buffer.ACT) && readable(b)) {
            k.op = LoopKernel.OP_HAND;
            k.hand = ClKernels.GEMM_DOT;
            k.tiles = 0;
            execute(Range.create2D(device, roundUp((n + 3) / 4, 8), roundUp((m + 3) / 4, 8), 8, 8));
            k.hand = 0;
            wrote(c);
            return;
        }
        int tx = LoopKernel.TILE_X, ty = LoopKernel.TILE_Y;
        // each work-group covers a 64 x 64 block of C
        execute(Range.create2D(device, (n + 63) / 64 * tx, (m + 63) / 64 * ty, tx, ty));
        k.tiles = 0;
        wrote(c);
    }

    /** Sets the longest k-slice of the register-blocked GEMM on operands read in place (benchmarks; default 4096). */
    public void setOuterKChunk(int chunk) {
        outerKChunk = Math.max(16, chunk);
    }

    /** Whether the register-blocked GEMM walks the rows first for C wider than tall (benchmarks; default true). */
    public void setOuterSwap(boolean swap) {
        outerSwap = swap;
    }

    /** Selects the GEMM kernel (see {@link GemmKernel}). */
    public void useGemm(GemmKernel g) {
        gemmKernel = g;
    }

    /** Whether this device passed {@link TensorCores#probe} and the program issues the tensor-core instruction. */
    public boolean tensorCores() {
        return tensorCores;
    }

    /** Whether {@link #gemm} runs the tensor-core kernel with the instruction (bf16 operands) as set now. */
    public boolean usesTensorCores() {
        return tensorCores && effectiveGemm() == GemmKernel.TENSOR;
    }

    /** The variant {@link #gemm} runs as set now: {@link GemmKernel#AUTO} resolved for this device. */
    public GemmKernel effectiveGemm() {
        return gemmKernel != GemmKernel.AUTO ? gemmKernel : cpuDevice ? GemmKernel.OUTER
                : tensorCores && matmul == MatmulPrecision.BF16_TENSOR ? GemmKernel.TENSOR : GemmKernel.TILED;
    }

    public GemmKernel gemmKernel() {
        return gemmKernel;
    }

    /** Runs cross-entropy as the hand-written OpenCL C kernels (xent.cl; the CPU default) or the translated twins. */
    public void useHandCrossEntropy(boolean hand) {
        handCrossEntropy = hand;
    }

    /** Runs attention (forward and backward) as the hand-written OpenCL C kernels (true) or the translated twins. */
    public void useHandAttention(boolean hand) {
        handAttention = hand;
    }

    /**
     * The GEMM in hand-written OpenCL C; false when the chosen variant does not take this layout and the translated
     * kernel runs it. The register-blocked one needs C with j contiguous; it packs B (and A, when both fit) into the
     * scratch region in panels of its micro-tile, so that each work item streams contiguous memory, and without room
     * there it reads a B with j contiguous in place.
     */
    private boolean handGemm(Buffer c, int cOff, int cRs, int cCs, Buffer a, int aOff, int aRs, int aCs,
                             Buffer b, int bOff, int bRs, int bCs, int m, int n, int kk, boolean accumulate) {
        GemmKernel g = effectiveGemm();
        boolean packA = false, packB = false;
        if (g == GemmKernel.OUTER) {
            if (cCs != 1) {
                return false;
            }
            long pb = (long) roundUp(n, ClKernels.OUTER_NR) * kk, pa = (long) roundUp(m, ClKernels.OUTER_MR) * kk;
            // packing B costs a pass over it per call: worth it when many row tiles reuse it (measured in the step:
            // the LM head's 50257 x 256 weight packed for each block of rows cost more than it saved)
            boolean room = transposeScratch >= 0
                    && !(c.equals(Buffer.ACT) && overlapsScratch(cOff, extent(m, cRs, n, cCs)))
                    && !(a.equals(Buffer.ACT) && overlapsScratch(aOff, extent(m, aRs, kk, aCs)))
                    && !(b.equals(Buffer.ACT) && overlapsScratch(bOff, extent(n, bRs, kk, bCs)));
            packB = room && m >= PACK_MIN_ROWS && pb <= transposeScratchSize;
            // A only when its rows are neither contiguous nor i-contiguous (never in the step's layouts)
            packA = packB && aRs != 1 && aCs != 1 && pa + pb <= transposeScratchSize;
            if (!packB && bRs != 1) {
                return false;
            }
            if (packB) {
                pack(transposeScratch, b, bOff, bRs, bCs, n, kk, ClKernels.OUTER_NR);
                b = Buffer.ACT;
                bOff = transposeScratch;
            }
            if (packA) {
                pack(transposeScratch + (int) pb, a, aOff, aRs, aCs, m, kk, ClKernels.OUTER_MR);
                a = Buffer.ACT;
                aOff = transposeScratch + (int) pb;
            }
        }
        k.op = LoopKernel.OP_HAND;
        k.tiles = 0;
        if (g == GemmKernel.OUTER) {
            // packed panels are laid out for the whole k; operands read in place can be walked in k-slices
            int chunk = packA || packB || kk <= outerKChunk ? kk : outerKChunk;
            for (int k0 = 0; k0 < kk; k0 += chunk) {
                setGemmFields(c, cOff, cRs, cCs, a, aOff + k0 * aCs, aRs, aCs, b, bOff + k0 * bCs, bRs, bCs, m, n,
                        Math.min(chunk, kk - k0), accumulate || k0 > 0);
                launchOuter(packA, packB, m, n);
            }
        } else if (g == GemmKernel.TENSOR) {
            // work-groups of 4 warps: 64 rows x 32 columns of C
            setGemmFields(c, cOff, cRs, cCs, a, aOff, aRs, aCs, b, bOff, bRs, bCs, m, n, kk, accumulate);
            k.hand = ClKernels.GEMM_TC;
            execute(Range.create2D(device, (n + 31) / 32 * 32, (m + 63) / 64 * 4, 32, 4));
        } else {
            setGemmFields(c, cOff, cRs, cCs, a, aOff, aRs, aCs, b, bOff, bRs, bCs, m, n, kk, accumulate);
            k.hand = ClKernels.GEMM_TILED;
            execute(Range.create2D(device, (n + 63) / 64 * 16, (m + 63) / 64 * 16, 16, 16));
        }
        k.hand = 0;
        wrote(c);
        return true;
    }

    /**
     * Packs X (rows, kk), element (r, k) at {@code off + r*rs + k*cs} in {@code x}, into act at {@code dst} as the
     * register-blocked GEMM's B panels (roundUp(rows, 16) * kk floats), for {@link #gemmPackedB}.
     */
    public void packPanels(int dst, Buffer x, int off, int rs, int cs, int rows, int kk) {
        reads(x, Buffer.ACT);
        pack(dst, x, off, rs, cs, rows, kk, ClKernels.OUTER_NR);
    }

    /**
     * C (m, n) (= or +=) A B^T on the register-blocked GEMM (CPU devices), B given as {@link #packPanels}' panels
     * at act[{@code bPanels}]: for a B used by many products between two changes (the LM head's weight).
     */
    public void gemmPackedB(Buffer c, int cOff, int cRs, Buffer a, int aOff, int aRs, int aCs, int bPanels, int m,
                            int n, int kk, boolean accumulate) {
        reads(a, c, Buffer.ACT);
        setGemmFields(c, cOff, cRs, 1, a, aOff, aRs, aCs, Buffer.ACT, bPanels, 1, ClKernels.OUTER_NR, m, n, kk,
                accumulate);
        k.op = LoopKernel.OP_HAND;
        k.tiles = 0;
        launchOuter(false, true, m, n);
        k.hand = 0;
        wrote(c);
    }

    // the register-blocked GEMM over C (m, n), its fields set, with A and/or B in packed panels
    private void launchOuter(boolean packedA, boolean packedB, int m, int n) {
        k.hand = ClKernels.GEMM_OUTER;
        k.o0 = packedA ? 1 : 0;
        k.o1 = packedB ? 1 : 0;
        int tx = (n + ClKernels.OUTER_NR - 1) / ClKernels.OUTER_NR, ty = (m + ClKernels.OUTER_MR - 1) / ClKernels.OUTER_MR;
        // neighbouring work-groups share A's rows (and stream B) or, for C wider than tall, B's panels (streaming
        // A): the larger operand is read from memory once, the smaller re-read from cache (measured: docs/opencl.md)
        boolean swap = outerSwap && n > m;
        k.o2 = swap ? 1 : 0;
        execute(swap ? Range.create2D(device, roundUp(ty, OUTER_GROUP_Y), roundUp(tx, OUTER_GROUP_X), OUTER_GROUP_Y,
                OUTER_GROUP_X) : Range.create2D(device, roundUp(tx, OUTER_GROUP_X), roundUp(ty, OUTER_GROUP_Y),
                OUTER_GROUP_X, OUTER_GROUP_Y));
    }

    // act[dst + p*P*kk + k*P + r] = X(pP + r, k), X (rows, kk) at off + j*rs + k*cs in x; zero past rows
    private void pack(int dst, Buffer x, int off, int rs, int cs, int rows, int kk, int panel) {
        k.op = LoopKernel.OP_HAND;
        k.hand = ClKernels.PACK;
        k.tiles = 0;
        k.aSel = x.selector();
        k.aOff = off;
        k.aRs = rs;
        k.aCs = cs;
        k.gm = rows;
        k.gk = kk;
        k.n1 = panel;
        k.o0 = dst;
        int gx = (kk + 15) / 16, gy = (rows + panel - 1) / panel;
        execute(Range.create2D(device, roundUp(gx, 4), roundUp(gy, 4), 4, 4));
        wrote(Buffer.ACT);
    }

    private boolean overlapsScratch(int off, long extent) {
        return off < transposeScratch + (long) transposeScratchSize && off + extent > transposeScratch;
    }

    // floats from a matrix's first element to past its last
    private static long extent(int rows, int rs, int cols, int cs) {
        return (long) (rows - 1) * rs + (long) (cols - 1) * cs + 1;
    }

    private void setGemmFields(Buffer c, int cOff, int cRs, int cCs, Buffer a, int aOff, int aRs, int aCs,
                               Buffer b, int bOff, int bRs, int bCs, int m, int n, int kk, boolean accumulate) {
        k.gm = m;
        k.gn = n;
        k.gk = kk;
        k.accumulate = accumulate ? 1 : 0;
        k.aSel = a.selector();
        k.aOff = aOff;
        k.aRs = aRs;
        k.aCs = aCs;
        k.bSel = b.selector();
        k.bOff = bOff;
        k.bRs = bRs;
        k.bCs = bCs;
        k.cSel = c.selector();
        k.cOff = cOff;
        k.cRs = cRs;
        k.cCs = cCs;
    }

    // out (N,O) act = x (N,I) act . w (O,I)^T from buffer wBuf
    public void linearForward(int outOff, int xOff, Buffer wBuf, int wOff, int n, int in, int o) {
        gemm(Buffer.ACT, outOff, o, 1, Buffer.ACT, xOff, in, 1, wBuf, wOff, in, 1, n, o, in, false);
    }

    // dx (N,I) act += dout (N,O) act . w (O,I)
    public void linearBackwardInput(int dxOff, int doutOff, Buffer wBuf, int wOff, int n, int in, int o) {
        gemm(Buffer.ACT, dxOff, in, 1, Buffer.ACT, doutOff, o, 1, wBuf, wOff, 1, in, n, in, o, true);
    }

    // dw (O,I) in dwBuf += dout (N,O)^T act . x (N,I) act
    public void linearBackwardWeight(Buffer dwBuf, int dwOff, int doutOff, int xOff, int n, int in, int o) {
        gemm(dwBuf, dwOff, in, 1, Buffer.ACT, doutOff, 1, o, Buffer.ACT, xOff, 1, in, o, in, n, true);
    }

    public void fill(Buffer b, int off, int count, float value) {
        reads(b);
        k.op = LoopKernel.OP_FILL;
        k.cSel = b.selector();
        k.o0 = off;
        k.n0 = count;
        k.f0 = value;
        launchElementwise(count);
        wrote(b);
    }

    // act[acc + i] += act[x + i]
    public void add(int accOff, int xOff, int count) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_ADD;
        k.o0 = accOff;
        k.o1 = xOff;
        k.n0 = count;
        launchElementwise(count);
        wrote(Buffer.ACT);
    }

    // m = silu(g) * u, all in act
    public void swigluForward(int mOff, int gOff, int uOff, int count) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_SWIGLU_FWD;
        k.o0 = gOff;
        k.o1 = uOff;
        k.o2 = mOff;
        k.n0 = count;
        launchElementwise(count);
        wrote(Buffer.ACT);
    }

    // dm -> dg +=, du +=, all in act
    public void swigluBackward(int dgOff, int duOff, int dmOff, int gOff, int uOff, int count) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_SWIGLU_BWD;
        k.o0 = gOff;
        k.o1 = uOff;
        k.o2 = dmOff;
        k.o3 = dgOff;
        k.o4 = duOff;
        k.n0 = count;
        launchElementwise(count);
        wrote(Buffer.ACT);
    }

    // x (N,D) act -> y (N,D) act, rstd (N) act; weight in params
    public void rmsnormForward(int yOff, int rstdOff, int xOff, int wOff, int n, int d, float eps) {
        rmsnormForward(yOff, rstdOff, xOff, 0, wOff, n, d, eps);
    }

    // the same with the weight in parameter segment seg
    public void rmsnormForward(int yOff, int rstdOff, int xOff, int seg, int wOff, int n, int d, float eps) {
        reads(Buffer.ACT, params(seg));
        k.pseg = seg;
        k.op = LoopKernel.OP_RMSNORM_FWD;
        k.o0 = xOff;
        k.o1 = yOff;
        k.o2 = rstdOff;
        k.o3 = wOff;
        k.n0 = n;
        k.n1 = d;
        k.f0 = eps;
        launch1D(n);
        wrote(Buffer.ACT);
    }

    // dy -> dx += (act); dw += (grads at dwOff) unless dwOff < 0
    public void rmsnormBackward(int dxOff, int dwOff, int dyOff, int xOff, int rstdOff, int wOff, int n, int d) {
        rmsnormBackward(dxOff, dwOff, dyOff, xOff, rstdOff, 0, wOff, n, d);
    }

    // the same with the weight (and its gradient) in parameter segment seg
    public void rmsnormBackward(int dxOff, int dwOff, int dyOff, int xOff, int rstdOff, int seg, int wOff, int n, int d) {
        reads(Buffer.ACT, params(seg), grads(seg));
        k.pseg = seg;
        k.op = LoopKernel.OP_RMSNORM_BWD_DX;
        k.o0 = xOff;
        k.o1 = dyOff;
        k.o2 = rstdOff;
        k.o3 = wOff;
        k.o4 = dxOff;
        k.n0 = n;
        k.n1 = d;
        launch1D(n);
        wrote(Buffer.ACT);
        if (dwOff >= 0) {
            k.op = LoopKernel.OP_RMSNORM_BWD_DW;
            k.o3 = dwOff;
            launch1D(d);
            wrote(grads(seg));
        }
    }

    // rotates x (rows, heads, hd) in act in place; forward or its transpose
    public void rope(int xOff, int rows, int seqLen, int heads, int hd, boolean forward) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_ROPE;
        k.o0 = xOff;
        k.n0 = seqLen;
        k.n1 = heads;
        k.n2 = hd;
        k.gn = rows * heads * (hd / 2);
        k.f0 = forward ? 1f : -1f;
        launchElementwise(k.gn);
        wrote(Buffer.ACT);
    }

    // h (N,D) act = embedding rows of TOKENS from the table at tableOff in parameter segment seg
    public void embedForward(int hOff, int seg, int tableOff, int n, int d) {
        reads(Buffer.ACT, params(seg), Buffer.TOKENS);
        k.pseg = seg;
        k.op = LoopKernel.OP_EMBED_FWD;
        k.o0 = tableOff;
        k.o1 = hOff;
        k.n0 = n;
        k.n1 = d;
        launch1D(n * d);
        wrote(Buffer.ACT);
    }

    // dh (N,D) act -> the table's gradient rows in segment seg +=, rows summed in order per column
    public void embedBackward(int seg, int tableOff, int dhOff, int n, int d) {
        reads(Buffer.ACT, grads(seg), Buffer.TOKENS);
        k.pseg = seg;
        k.op = LoopKernel.OP_EMBED_BWD;
        k.o0 = tableOff;
        k.o1 = dhOff;
        k.n0 = n;
        k.n1 = d;
        launch1D(d);
        wrote(grads(seg));
    }

    // q, k, v (B,S,H,hd) act -> out act, probs (B,H,S,S) act
    /**
     * Causal attention forward; keeps only each query row's log-sum-exp ({@code lseOff}, B*H*S floats), so
     * memory grows with S, not S^2.
     */
    public void attentionForward(int outOff, int lseOff, int qOff, int kOff, int vOff,
                                 int batch, int seqLen, int heads, int hd) {
        reads(Buffer.ACT);
        if (handAttention && hd <= ClKernels.ATTN_MAX_HEAD) {
            // the OpenCL C kernel tiled over keys (ClKernels); the translated one below is its twin
            k.op = LoopKernel.OP_HAND;
            k.hand = ClKernels.ATTN_FWD;
            k.o0 = qOff;
            k.o1 = kOff;
            k.o2 = vOff;
            k.o3 = lseOff;
            k.o4 = outOff;
            attnShape(batch, seqLen, heads, hd);
            launch1D(batch * heads * ((seqLen + ClKernels.ATTN_QUERIES - 1) / ClKernels.ATTN_QUERIES));
            k.hand = 0;
            wrote(Buffer.ACT);
            return;
        }
        k.op = LoopKernel.OP_ATTN_FWD;
        k.o0 = qOff;
        k.o1 = kOff;
        k.o2 = vOff;
        k.o3 = lseOff;
        k.o4 = outOff;
        attnShape(batch, seqLen, heads, hd);
        launch1D(batch * heads * seqLen);
        wrote(Buffer.ACT);
    }

    /** dout -> dq, dk, dv +=, recomputing the probabilities from q, k and the forward's lse; out is the forward's output. */
    public void attentionBackward(int dqOff, int dkOff, int dvOff, int doutOff, int outOff, int lseOff,
                                  int qOff, int kOff, int vOff, int batch, int seqLen, int heads, int hd) {
        reads(Buffer.ACT);
        k.o0 = qOff;
        k.o1 = kOff;
        k.o2 = vOff;
        k.o3 = lseOff;
        k.o4 = doutOff;
        k.o5 = dqOff;
        k.o6 = outOff;
        k.o7 = dkOff;
        k.o8 = dvOff;
        attnShape(batch, seqLen, heads, hd);
        if (handAttention && hd <= ClKernels.ATTN_MAX_HEAD) {
            // the OpenCL C kernels (ClKernels), a work item per 4 queries / 4 keys; the translated ones are the twin
            int items = batch * heads * ((seqLen + ClKernels.ATTN_QUERIES - 1) / ClKernels.ATTN_QUERIES);
            k.op = LoopKernel.OP_HAND;
            k.hand = ClKernels.ATTN_BWD_Q;
            launch1D(items);
            k.hand = ClKernels.ATTN_BWD_KV;
            launch1D(items);
            k.hand = 0;
            wrote(Buffer.ACT);
            return;
        }
        k.op = LoopKernel.OP_ATTN_BWD_Q;
        launch1D(batch * heads * seqLen);
        k.op = LoopKernel.OP_ATTN_BWD_KV;
        launch1D(batch * heads * seqLen);
        wrote(Buffer.ACT);
    }

    private void attnShape(int batch, int seqLen, int heads, int hd) {
        k.n0 = batch;
        k.n1 = seqLen;
        k.n2 = heads;
        k.n3 = hd;
        k.f0 = (float) (1.0 / Math.sqrt(hd));
    }

    // rows [first, first + rows) with logits (rows,V) at logitsOff -> lse, ce at lseOff/ceOff + row
    public void crossEntropyForward(int logitsOff, int lseOff, int ceOff, int first, int rows, int vocab) {
        reads(Buffer.ACT, Buffer.TARGETS);
        k.op = handCrossEntropy ? LoopKernel.OP_HAND : LoopKernel.OP_CE_FWD;
        k.hand = handCrossEntropy ? ClKernels.CE_FWD : 0;
        k.o0 = logitsOff;
        k.o1 = lseOff;
        k.o2 = ceOff;
        k.n0 = rows;
        k.n1 = vocab;
        k.n2 = first;
        launch1D(rows);
        k.hand = 0;
        wrote(Buffer.ACT);
    }

    // in place: logits -> dce * (softmax - onehot)
    public void crossEntropyBackward(int logitsOff, int lseOff, int dceOff, int first, int rows, int vocab) {
        reads(Buffer.ACT, Buffer.TARGETS);
        k.op = handCrossEntropy ? LoopKernel.OP_HAND : LoopKernel.OP_CE_BWD;
        k.hand = handCrossEntropy ? ClKernels.CE_BWD : 0;
        k.o0 = logitsOff;
        k.o1 = lseOff;
        k.o3 = dceOff;
        k.n0 = rows;
        k.n1 = vocab;
        k.n2 = first;
        launch1D(rows);
        k.hand = 0;
        wrote(Buffer.ACT);
    }

    // act[off + i] += params[biasOff]
    public void biasAdd(int off, int biasOff, int count) {
        biasAdd(off, 0, biasOff, count);
    }

    // the same with the bias in parameter segment seg
    public void biasAdd(int off, int seg, int biasOff, int count) {
        reads(Buffer.ACT, params(seg));
        k.pseg = seg;
        k.op = LoopKernel.OP_BIAS_ADD;
        k.o0 = off;
        k.o1 = biasOff;
        k.n0 = count;
        launch1D(count);
        wrote(Buffer.ACT);
    }

    // grads[gradOff] += sum of act[off, off + count)
    public void sumToGrad(int gradOff, int off, int count) {
        sumToGrad(0, gradOff, off, count);
    }

    // the same with the gradient in parameter segment seg
    public void sumToGrad(int seg, int gradOff, int off, int count) {
        reads(Buffer.ACT, grads(seg));
        k.pseg = seg;
        k.op = LoopKernel.OP_SUM_TO_GRAD;
        k.o0 = off;
        k.o1 = gradOff;
        k.n0 = count;
        launch1D(1);
        wrote(grads(seg));
    }

    /** Parameter segments: 1, or more for a model past one buffer (see {@link HostArrays#MAX_FLOATS}). */
    public int segments() {
        return segments.length;
    }

    /** The parameter buffer of segment seg (also the GEMM selector for it). */
    public static Buffer params(int seg) {
        return new Buffer(Buffer.Kind.PARAMS, seg);
    }

    /** Adam's moment {@code which} (0 first, 1 second) of segment seg. */
    public static Buffer moments(int which, int seg) {
        return new Buffer(which == 0 ? Buffer.Kind.MOM1 : Buffer.Kind.MOM2, seg);
    }

    /** The gradient buffer of segment seg. */
    public static Buffer grads(int seg) {
        return new Buffer(Buffer.Kind.GRADS, seg);
    }

    private int transposeScratch = -1, transposeScratchSize;

    /**
     * A region of act where {@link #gemm} may transpose operands that are not k-contiguous on a CPU device, so
     * that every layout runs as dot products; a product whose operands do not fit uses the tiled kernel.
     */
    public void setTransposeScratch(int off, int size) {
        transposeScratch = off;
        transposeScratchSize = size;
    }

    /** Whether this is a CPU device, where some layouts take other kernels. */
    public boolean cpuDevice() {
        return cpuDevice;
    }

    // act[dst + c*rows + r] = src[srcOff + r*cols + c]: the (rows, cols) matrix in src (PARAMS or ACT), transposed
    public void transpose(int dstOff, Buffer src, int srcOff, int rows, int cols) {
        transpose(dstOff, src, srcOff, rows, cols, cols);
    }

    // the same with source rows `stride` apart
    private void transpose(int dstOff, Buffer src, int srcOff, int rows, int cols, int stride) {
        if (!readable(src)) {
            throw new IllegalArgumentException("transpose reads parameters or ACT, not " + src);
        }
        reads(src, Buffer.ACT);
        k.op = LoopKernel.OP_TRANSPOSE;
        k.aSel = src.selector();
        k.o0 = dstOff;
        k.o1 = srcOff;
        k.n0 = rows;
        k.n1 = cols;
        k.n2 = stride;
        k.n3 = (cols + 15) / 16;
        launchElementwise(k.n3 * ((rows + 15) / 16));
        wrote(Buffer.ACT);
    }

    /**
     * Copies {@code count} values between slots: 0 is the activation buffer, 1 + i stash buffer i. Stash buffers
     * live on the device only (they are never uploaded or read back). With {@code bf16} they hold bfloat16 values
     * ({@code bf16.cl}): into a stash buffer each float is rounded to the nearest bfloat16 (ties to even) and stored in
     * 16 bits at the 16-bit offset {@code dstOff}; out of one, widened back; then exactly one side is a stash buffer.
     */
    public void copyAcross(int dstSlot, int dstOff, int srcSlot, int srcOff, int count, boolean bf16) {
        if (bf16 && (dstSlot == 0) == (srcSlot == 0)) {
            throw new IllegalArgumentException("a bfloat16 stash copy goes between the activation buffer and a stash "
                    + "buffer, not " + srcSlot + " -> " + dstSlot);
        }
        reads(Buffer.ACT, Buffer.STASH);
        k.op = bf16 ? LoopKernel.OP_HAND : LoopKernel.OP_XCOPY;
        k.hand = bf16 ? ClKernels.STASH16 : 0;
        k.cSel = dstSlot;
        k.aSel = srcSlot;
        k.o0 = dstOff;
        k.o1 = srcOff;
        k.n0 = count;
        launchElementwise(count);
        k.hand = 0;
        wrote(Buffer.ACT);
        wrote(Buffer.STASH);
    }

    private void setStash(int i, float[] a, int n) {
        bind("s" + i, a);
        guard("s" + i, a, n);
    }

    public void copy(int dstOff, int srcOff, int count) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_COPY;
        k.o0 = dstOff;
        k.o1 = srcOff;
        k.n0 = count;
        launchElementwise(count);
        wrote(Buffer.ACT);
    }

    /**
     * Exit distribution and objective per token; (T,N) arrays in act. Writes p, dz, dce (Stage I) and
     * metrics[r] = the token's share of the loss, then metrics[N + t] / metrics[N + T + t] = the sums of
     * CE_t / p_t over tokens with a target.
     */
    public void exitObjective(int zOff, int ceOff, int pOff, int dzOff, int dceOff, int n, int steps,
                              boolean stageOne, float scale, float beta, float k50, float gamma) {
        reads(Buffer.ACT, Buffer.TARGETS, Buffer.METRICS);
        k.op = LoopKernel.OP_EXIT;
        k.o0 = zOff;
        k.o1 = ceOff;
        k.o2 = pOff;
        k.o3 = dzOff;
        k.o4 = dceOff;
        k.n0 = n;
        k.n1 = steps;
        k.n2 = stageOne ? 1 : 2;
        k.f0 = scale;
        k.f1 = beta;
        k.f2 = k50;
        k.f3 = gamma;
        launch1D(n);
        k.op = LoopKernel.OP_STEP_MEANS;
        launch1D(steps);
        wrote(Buffer.ACT);
        wrote(Buffer.METRICS);
    }

    /**
     * Partial sums of squares of the gradient into metrics: segment s's {@code partials} partial sums at
     * {@code metricsOff + s * partials}.
     */
    public void gradSumSquares(int metricsOff, int partials) {
        for (int seg = 0; seg < segments.length; seg++) {
            reads(grads(seg), Buffer.METRICS);
            int total = segments[seg];
            k.pseg = seg;
            k.op = LoopKernel.OP_SUMSQ;
            k.o0 = metricsOff + seg * partials;
            k.n0 = partials;
            k.n1 = total;
            k.n2 = (total + partials - 1) / partials;
            launch1D(partials);
            wrote(Buffer.METRICS);
        }
    }

    public void scaleGrads(float factor) {
        scaleGrads(factor, 0);
    }

    /** Divides every gradient by {@code divisor}. */
    public void divideGrads(float divisor) {
        scaleGrads(divisor, 1);
    }

    // n1 0: multiply by f, 1: divide by f
    private void scaleGrads(float f, int divide) {
        for (int seg = 0; seg < segments.length; seg++) {
            reads(grads(seg));
            k.pseg = seg;
            k.op = LoopKernel.OP_SCALE;
            k.n0 = segments[seg];
            k.n1 = divide;
            k.f0 = f;
            launchElementwise(segments[seg]);
            wrote(grads(seg));
        }
    }

    /** AdamW on params[off, off + len) with the update of {@link io.ouro.worker.model.AdamW}. */
    public void adamw(int off, int len, float keep, float beta1, float beta2, float stepSize, float sqrtBc2, float eps) {
        adamw(0, off, off, len, keep, beta1, beta2, stepSize, sqrtBc2, eps);
    }

    /**
     * The same on parameter segment seg, its moments from {@code momentOff} in that segment's moment buffers (equal to
     * {@code off} unless the moments are sharded: {@link #resizeMoments}).
     */
    public void adamw(int seg, int off, int momentOff, int len, float keep, float beta1, float beta2, float stepSize,
                      float sqrtBc2, float eps) {
        Buffer m1 = moments(0, seg), m2 = moments(1, seg);
        reads(params(seg), grads(seg), m1, m2);
        k.pseg = seg;
        k.op = LoopKernel.OP_ADAMW;
        k.o0 = off;
        k.o1 = momentOff;
        k.n0 = len;
        k.f0 = keep;
        k.f1 = beta1;
        k.f2 = beta2;
        k.f3 = stepSize;
        k.f4 = sqrtBc2;
        k.f5 = eps;
        launchElementwise(len);
        wrote(params(seg));
        wrote(m1);
        wrote(m2);
    }

    /**
     * Re-sizes the moment buffers of each parameter segment (ZeRO-1: only this rank's slice of the moments is
     * kept), zeroed; at least one float each.
     */
    public void resizeMoments(int[] floatsPerSegment) {
        if (floatsPerSegment.length != segments.length) {
            throw new IllegalArgumentException(floatsPerSegment.length + " moment sizes for " + segments.length
                    + " parameter segments");
        }
        for (int seg = 0; seg < segments.length; seg++) {
            int n = Math.max(1, floatsPerSegment[seg]);
            Buffer m1 = moments(0, seg), m2 = moments(1, seg);
            logicalFloats += 2L * (n - sizes.get(m1));
            allocate(m1, n);
            allocate(m2, n);
            upload(m1);
            upload(m2);
        }
    }

    /** Floats of a buffer as sized. */
    public long size(Buffer b) {
        return sizes.get(b);
    }

    /**
     * Copies {@code scale} times parameters ({@code grads} false) or gradients [off, off + len) of segment seg into
     * {@code dst[dstOff, dstOff + len)} through the exchange buffer: only the range crosses to the host.
     */
    public void readRange(boolean grads, int seg, int off, float[] dst, int dstOff, int len, float scale) {
        ensureExchange(len);
        reads(grads ? grads(seg) : params(seg));
        k.pseg = seg;
        k.op = LoopKernel.OP_RANGE_OUT;
        k.o0 = off;
        k.n0 = len;
        k.n1 = grads ? 1 : 0;
        k.f0 = scale;
        launchElementwise(len);
        wrote(Buffer.EXCHANGE);
        k.get(k.xg);
        bytesDown += 4L * sizes.get(Buffer.EXCHANGE);
        residency.set(Buffer.EXCHANGE, Residency.Side.BOTH);
        System.arraycopy(k.xg, 0, dst, dstOff, len);
    }

    /** Writes {@code src[srcOff, srcOff + len)} over parameters or gradients [off, off + len) of segment seg. */
    public void writeRange(boolean grads, int seg, int off, float[] src, int srcOff, int len) {
        ensureExchange(len);
        Buffer target = grads ? grads(seg) : params(seg);
        reads(target);
        System.arraycopy(src, srcOff, k.xg, 0, len);
        upload(Buffer.EXCHANGE);
        k.pseg = seg;
        k.op = LoopKernel.OP_RANGE_IN;
        k.o0 = off;
        k.n0 = len;
        k.n1 = grads ? 1 : 0;
        launchElementwise(len);
        wrote(target);
    }

    // the exchange buffer holds at least n floats (it grows to the largest range asked for, and stays)
    private void ensureExchange(int n) {
        if (sizes.get(Buffer.EXCHANGE) < n) {
            logicalFloats += n - sizes.get(Buffer.EXCHANGE);
            allocate(Buffer.EXCHANGE, n);
            upload(Buffer.EXCHANGE);
        }
    }

    // ---- decoding one token over a KV cache (OpenClDecodeOps) ----

    /** Whether this model has gradient and moment buffers. */
    public boolean training() {
        return training;
    }

    // the row x (heads, hd) in act rotated in place to position pos of the rope tables
    public void ropeAt(int xOff, int pos, int heads, int hd) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_ROPE_AT;
        k.o0 = xOff;
        k.n0 = pos;
        k.n1 = heads;
        k.n2 = hd;
        launch1D(heads * (hd / 2));
        wrote(Buffer.ACT);
    }

    // out (H,hd) = attention of q over rows [0, len) of the cached keys kc / values vc (len, H*hd), then its own key
    // and value kSelf / vSelf; all in act, with heads x (len + 1) floats of score scratch at scoresOff
    public void attendCached(int outOff, int qOff, int kcOff, int vcOff, int len, int kSelfOff, int vSelfOff, int heads,
                             int hd, int scoresOff) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_ATTN_CACHED;
        k.o0 = qOff;
        k.o1 = kcOff;
        k.o2 = vcOff;
        k.o3 = kSelfOff;
        k.o4 = vSelfOff;
        k.o5 = outOff;
        k.o6 = scoresOff;
        k.n0 = len;
        k.n2 = heads;
        k.n3 = hd;
        k.f0 = (float) (1.0 / Math.sqrt(hd));
        launch1D(heads);
        wrote(Buffer.ACT);
    }

    // act[dst + i] = mean over j < sources of act[src + j * stride + i], i < count
    public void mean(int dstOff, int srcOff, int stride, int sources, int count) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_MEAN;
        k.o0 = dstOff;
        k.o1 = srcOff;
        k.n0 = count;
        k.n1 = sources;
        k.n2 = stride;
        launchElementwise(count);
        wrote(Buffer.ACT);
    }

    // one row: y (D) = x / rms(x) * w + r, all in act but w (parameter segment seg); rstd (1) in act
    public void rmsnormAddForward(int yOff, int rstdOff, int xOff, int seg, int wOff, int rOff, int d, float eps) {
        reads(Buffer.ACT, params(seg));
        k.pseg = seg;
        k.op = LoopKernel.OP_RMSNORM_ADD;
        k.o0 = xOff;
        k.o1 = yOff;
        k.o2 = rstdOff;
        k.o3 = wOff;
        k.o4 = rOff;
        k.n1 = d;
        k.f0 = eps;
        launch1D(1);
        wrote(Buffer.ACT);
    }

    // y (O) = x (I) . w (O,I)^T for one row, w in parameter segment seg: one work item per output
    public void gemv(int yOff, int xOff, int seg, int wOff, int in, int out) {
        reads(Buffer.ACT, params(seg));
        k.pseg = seg;
        k.op = handGemv ? LoopKernel.OP_HAND : LoopKernel.OP_GEMV;
        k.hand = handGemv ? ClKernels.GEMV : 0;
        k.o0 = yOff;
        k.o1 = xOff;
        k.o2 = wOff;
        k.n0 = out;
        k.n1 = in;
        launch1D(handGemv ? (out + 3) / 4 : out);
        k.hand = 0;
        wrote(Buffer.ACT);
    }

    /** Runs {@link #gemv} as the hand-written OpenCL C (vector loads; default on CPU devices) or the translated twin. */
    public void useHandGemv(boolean hand) {
        handGemv = hand;
    }

    /** Work items of the one work-group of {@link #decodeStep} (a power of two). */
    static final int DECODE_GROUP = 256;

    /**
     * One loop step of one decoded token in one launch of one work-group ({@code decode.cl}): every layer, the final
     * norm and the exit gate's logit. The tensors' and vectors' offsets are in TOKENS from {@code tableAt}
     * ({@link ClKernels#DECODE_LAYER_INTS} per layer, then {@link ClKernels#DECODE_TAIL_INTS}), uploaded by the caller.
     *
     * @param qkv         the query of (this step, layer 0) in act; its key and value follow, layer l's at + 3 d l
     * @param keys        layer 0's cached keys in act; layer l's at {@code keys + l * slotStride}
     * @param valuesDelta from a slot's keys to its values
     * @param pos         the token's position, which is the number of cached rows
     */
    public void decodeStep(int tableAt, int seg, int layers, int d, int heads, int ffn, int qkv, int keys,
                           int slotStride, int valuesDelta, int gateOff, int pos, float eps) {
        reads(Buffer.ACT, params(seg), Buffer.TOKENS);
        k.pseg = seg;
        k.op = LoopKernel.OP_PHASES;
        k.hand = ClKernels.DECODE_STEP;
        k.phases = layers * ClKernels.DECODE_PHASES + 1;
        k.n0 = layers;
        k.n1 = d;
        k.n2 = heads;
        k.n3 = ffn;
        k.o0 = tableAt;
        k.o1 = qkv;
        k.o2 = keys;
        k.o3 = slotStride;
        k.o4 = valuesDelta;
        k.o5 = gateOff;
        k.o6 = pos;
        k.f0 = eps;
        k.f1 = (float) (1.0 / Math.sqrt(d / heads));
        k.tiles = 0;
        execute(Range.create(device, DECODE_GROUP, DECODE_GROUP));
        k.hand = 0;
        k.phases = 0;
        wrote(Buffer.ACT);
    }

    /**
     * KV-cache rows in one launch ({@code decode.cl}): {@code entries} entries of 6 ints in TOKENS from {@code tableAt}
     * (destination keys, destination values, source key, source value, distance between source steps, steps), each
     * destination row of d floats the mean of its sources, summed in step order as {@link #mean} does.
     */
    public void storeRows(int tableAt, int entries, int d) {
        reads(Buffer.ACT, Buffer.TOKENS);
        k.op = LoopKernel.OP_HAND;
        k.hand = ClKernels.STORE_ROWS;
        k.o0 = tableAt;
        k.n0 = entries;
        k.n1 = d;
        launch1D(entries * 2 * d);
        k.hand = 0;
        wrote(Buffer.ACT);
    }

    /**
     * {@code count} floats of act at {@code off}, through the metrics buffer (which must hold them): the whole
     * activation buffer (a decoder's KV cache) is never downloaded.
     */
    public float[] readAct(int off, int count) {
        if (count > sizes.get(Buffer.METRICS)) {
            throw new IllegalArgumentException(count + " floats do not fit the metrics buffer of "
                    + sizes.get(Buffer.METRICS));
        }
        reads(Buffer.ACT, Buffer.METRICS);
        k.op = LoopKernel.OP_TO_METRICS;
        k.o0 = 0;
        k.o1 = off;
        k.n0 = count;
        launchElementwise(count);
        wrote(Buffer.METRICS);
        download(Buffer.METRICS);
        return java.util.Arrays.copyOf(read(Buffer.METRICS), count);
    }

    @Override
    public void close() {
        k.dispose();
    }

    /**
     * An elementwise op over {@code count} elements. On a CPU device each work item takes a contiguous run
     * (about {@link #CPU_ITEMS} items in all), on a GPU one element each.
     */
    private void launchElementwise(int count) {
        int items = count;
        if (cpuDevice) {
            items = Math.min(count, CPU_ITEMS);
        }
        k.chunk = (Math.max(count, 1) + Math.max(items, 1) - 1) / Math.max(items, 1);
        items = (Math.max(count, 1) + k.chunk - 1) / k.chunk;
        launch1D(items);
        k.chunk = 1;
    }

    private void launch1D(int count) {
        k.tiles = 0;
        execute(Range.create(device, roundUp(Math.max(count, 1), GROUP), GROUP));
    }

    private void execute(Range range) {
        long t0 = profile == null ? 0 : System.nanoTime();
        String name = k.op != LoopKernel.OP_HAND && k.op != LoopKernel.OP_PHASES ? OP_NAMES[k.op]
                : k.hand == ClKernels.PACK ? PACK_NAME
                : k.hand == ClKernels.GEMM_DOT ? DOT_NAME
                : k.hand == ClKernels.ATTN_FWD ? "attention fwd (OpenCL C)"
                : k.hand == ClKernels.ATTN_BWD_Q ? "attention bwd q (OpenCL C)"
                : k.hand == ClKernels.ATTN_BWD_KV ? "attention bwd kv (OpenCL C)"
                : k.op == LoopKernel.OP_PHASES ? "decode step (OpenCL C)"
                : k.hand == ClKernels.STORE_ROWS ? "store rows (OpenCL C)"
                : k.hand == ClKernels.GEMV ? "gemv (OpenCL C)"
                : k.hand == ClKernels.STASH16 ? "stash copy bf16 (OpenCL C)"
                : k.hand == ClKernels.CE_FWD ? "cross-entropy fwd (OpenCL C)"
                : k.hand == ClKernels.CE_BWD ? "cross-entropy bwd (OpenCL C)"
                : k.hand == ClKernels.GEMM_TC ? (tensorCores ? TC_NAME : TC_EMULATED_NAME) : OP_NAMES[k.op];
        if (profileShapes && (k.op == LoopKernel.OP_GEMM || k.hand == ClKernels.GEMM_DOT
                || k.hand == ClKernels.GEMM_OUTER || k.hand == ClKernels.GEMM_TILED || k.hand == ClKernels.GEMM_TC)) {
            name += String.format(java.util.Locale.ROOT, " %dx%dx%d a%d,%d b%d,%d%s", k.gm, k.gn, k.gk, k.aRs, k.aCs,
                    k.bRs, k.bCs, k.hand == ClKernels.GEMM_OUTER ? (k.o1 == 1 ? " packedB" : "") : "");
        }
        KernelCheck.launch(k, device, range, "op '" + name + "'");
        pendingUploads.clear();
        if (device.isSharedMemory()) {
            checkCanaries("op '" + name + "'");
        }
        if (profile != null) {
            long[] slot = profile.computeIfAbsent(name, nm -> new long[2]);
            slot[0] += System.nanoTime() - t0;
            slot[1]++;
        }
    }

    /** Starts (or restarts) timing every launch by op; Aparapi's execute returns when the kernel is done. */
    public void startProfile() {
        startProfile(false);
    }

    /** As {@link #startProfile()}; with {@code shapes}, each GEMM is timed by its shape and layout as well. */
    public void startProfile(boolean shapes) {
        profile = new java.util.TreeMap<>();
        profileShapes = shapes;
    }

    /** Op name to {total nanoseconds, launches} since {@link #startProfile()}; empty when not profiling. */
    public java.util.Map<String, long[]> profile() {
        return profile == null ? java.util.Map.of() : profile;
    }

    private void reads(Buffer... bs) {
        for (Buffer b : bs) {
            if (!training && b.trainingOnly()) {
                throw new IllegalStateException("a forward-only model has no " + b + " buffer");
            }
            residency.requireDevice(b);
        }
    }

    private void wrote(Buffer b) {
        residency.set(b, Residency.Side.DEVICE);
    }

    private float[] floats(Buffer b) {
        return switch (b.kind()) {
            case TOKENS, TARGETS -> throw new IllegalArgumentException(b + " holds ints");
            case STASH -> throw new IllegalArgumentException("the stash buffers stay on the device");
            case ACT -> {
                if (actWindows() > 1) {
                    throw new IllegalArgumentException("the activation arena spans " + actWindows()
                            + " windows: read it with actWindow(i)");
                }
                yield act[0];
            }
            default -> arrays.get(b);
        };
    }

    private int[] ints(Buffer b) {
        return switch (b.kind()) {
            case TOKENS -> k.tok;
            case TARGETS -> k.tgt;
            default -> throw new IllegalArgumentException(b + " holds floats");
        };
    }

    // the buffers the CPU GEMM's dot-product path and the transpose read
    private static boolean readable(Buffer b) {
        return b.kind() == Buffer.Kind.ACT || b.kind() == Buffer.Kind.PARAMS;
    }

    private static int roundUp(int x, int m) {
        return (x + m - 1) / m * m;
    }
}
