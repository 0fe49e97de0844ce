package io.ouro.worker.opencl;

import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.opencl.OpenClOps.Buffer;

/**
 * The device buffers of an {@link OpenClOps}: one {@link LoopKernel} in explicit-buffer mode, the host array behind
 * each of its buffers, and which copy is current ({@link Residency}). {@link #upload}/{@link #download} move a buffer;
 * an op declares what it reads and writes ({@link #reads}, {@link #wrote}), so that none reads a stale copy. All
 * offsets and sizes are in floats.
 */
abstract class DeviceBuffers {

    /** Parameter segments the kernel can address (w0..w7 and their gradients and moments). */
    public static final int PARAM_SEGMENTS = LoopKernel.SEGMENTS;
    /** The activation arena's windows: at most this many floats each, a region never straddling two. */
    public static final int ACT_WINDOW = LoopKernel.ACT_WINDOW;
    /** The activation arena's windows at most. */
    public static final int ACT_PIECES = LoopKernel.ACT_PIECES;

    final LoopKernel k = new LoopKernel();
    /** False for a forward-only model: no gradient or moment buffers. */
    final boolean training;
    final int[] segments;
    /** Floats of the buffers as sized (their arrays may be longer: see {@link HostArrays}). */
    private long logicalFloats;
    private final java.util.Map<Buffer, Long> sizes = new java.util.HashMap<>();
    /** The host array of every float buffer but the activation arena and the stash. */
    private final java.util.Map<Buffer, float[]> arrays = new java.util.HashMap<>();
    /** The activation arena's windows (at most {@link LoopKernel#ACT_PIECES}). */
    private final float[][] act;
    final OpenCLDevice device;
    final boolean cpuDevice;
    private final Residency residency = new Residency();
    /** Token ids the TOKENS buffer holds, and the distinct ones among them at the last upload (-1: none yet). */
    private final int tokenRows;
    private int tokenGroups = -1;
    private long bytesUp, bytesDown;
    private boolean closed;
    /**
     * The weights' bfloat16 copy ({@link #keepWeightCopy}): none until asked for; then, per segment, whether the fp32
     * parameters changed since the copy was last made (every write of them, on the host or the device, passes
     * {@link #upload} or {@link #wrote}).
     */
    private boolean weightCopy;
    private final boolean[] copyStale = new boolean[LoopKernel.SEGMENTS];
    /**
     * The activation copies' slots ({@link GemmOps}): the range [from, from + len) of the arena each holds a bfloat16
     * copy of, fresh until any write that may overlap it (len 0: nothing).
     */
    private final long[] actCopyFrom = new long[ACT_COPY_SLOTS], actCopyLen = new long[ACT_COPY_SLOTS];
    /**
     * Slots of activation copies a backend keeps: 4, so that the step's reuse fits (the q, k and v input gradients'
     * three dY and the layer input their weight gradients all read).
     */
    public static final int ACT_COPY_SLOTS = 4;
    /** Bytes of the device buffers of every open OpenClOps in this process, and their peak since {@link #resetPeak}. */
    private static long live, peak;

    /**
     * Allocates every buffer (one-float placeholders for the unused ones) and binds it to the kernel's field.
     *
     * @param paramSegments floats of each parameter segment (one to {@link #PARAM_SEGMENTS}), each with its gradient
     *                      and moments
     * @param actSize       floats of the activation arena, at global offsets [0, actSize): windows of
     *                      {@link #ACT_WINDOW} floats, each its own device buffer
     * @param metricsSize   floats of per-step outputs (per-token losses, per-step sums, norm partials)
     * @param rows          tokens per step (the size of the token and target buffers; in a training model the
     *                      token buffer holds their {@link TokenIndex} after them)
     * @param stashSizes    floats of each stash buffer (at most {@link LoopKernel#STASH_SLOTS})
     * @param training      false for a forward-only model (evaluation, decoding): no gradient and no Adam moment
     *                      buffers are allocated (one-float placeholders), and an op that would touch them is an error
     * @param momentSegments floats of Adam's moments per segment (ZeRO-1: only this rank's slice, so that the full
     *                      moments are never allocated); null: as the parameters
     */
    DeviceBuffers(OpenCLDevice device, int[] paramSegments, int[] momentSegments, long actSize, int metricsSize,
                  int rows, int[] stashSizes, boolean training) {
        HostArrays.requireCollector(); // before any array is handed to the driver
        this.training = training;
        if (stashSizes.length > LoopKernel.STASH_SLOTS) {
            throw new IllegalArgumentException(stashSizes.length + " stash buffers, at most " + LoopKernel.STASH_SLOTS);
        }
        if (momentSegments != null && momentSegments.length != paramSegments.length) {
            throw new IllegalArgumentException(momentSegments.length + " moment sizes for " + paramSegments.length
                    + " parameter segments");
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
        this.segments = paramSegments.clone();
        DeviceMemory.configure(device);
        // every buffer's array, the kernel's one-element placeholders included, is one the collector never moves
        for (int seg = 0; seg < PARAM_SEGMENTS; seg++) {
            int n = seg < paramSegments.length ? paramSegments[seg] : 1;
            int t = training ? n : 1;
            int m = !training || seg >= paramSegments.length ? 1
                    : momentSegments == null ? n : Math.max(1, momentSegments[seg]);
            allocate(new Buffer(Buffer.Kind.PARAMS, seg), n);
            allocate(new Buffer(Buffer.Kind.GRADS, seg), t);
            allocate(new Buffer(Buffer.Kind.MOM1, seg), m);
            allocate(new Buffer(Buffer.Kind.MOM2, seg), m);
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
        // a training model's token ids carry their index by token for the embedding backward (TokenIndex)
        int tokInts = rows + (training ? TokenIndex.ints(rows) : 0);
        this.tokenRows = rows;
        k.tok = HostArrays.ints(tokInts);
        k.tgt = HostArrays.ints(rows);
        guard("tok", k.tok, tokInts);
        guard("tgt", k.tgt, rows);
        sizes.put(Buffer.TOKENS, (long) tokInts);
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
        // every buffer as sized, the placeholders of unused windows, the two rope tables and the weight copy's
        // placeholders (keepWeightCopy replaces them) included
        logicalFloats = (LoopKernel.ACT_PIECES - pieces) + 2 + LoopKernel.SEGMENTS;
        for (long n : sizes.values()) {
            logicalFloats += n;
        }
        held(4 * logicalFloats);
        k.setExplicit(true);
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
    final void checkCanaries(String after) {
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
        for (java.lang.reflect.Field f : KernelFields.class.getDeclaredFields()) {
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

    private static java.lang.reflect.Field kernelField(String name) throws NoSuchFieldException {
        java.lang.reflect.Field f = KernelFields.class.getDeclaredField(name);
        f.setAccessible(true);
        return f;
    }

    // the kernel's field of that name now holds a (at allocation: a field's new array gets a new device buffer)
    private void bind(String name, float[] a) {
        try {
            kernelField(name).set(k, a);
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
        hostWrote(Buffer.ACT);
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

    /** Token ids the TOKENS buffer holds ({@link TokenIndex} follows them in a training model). */
    final int tokenRows() {
        return tokenRows;
    }

    /** Distinct tokens in the index built at the last upload of the token ids. */
    final int tokenGroups() {
        if (tokenGroups < 0) {
            throw new IllegalStateException("the token index is built when the token ids are uploaded"
                    + (training ? "; upload TOKENS first" : ", in a training model only"));
        }
        return tokenGroups;
    }

    /** The host copy of b, checked to be current. */
    public float[] read(Buffer b) {
        residency.requireHost(b);
        return floats(b);
    }

    /** Marks b as changed on the host (the device copy is now stale). */
    public void hostWrote(Buffer b) {
        residency.set(b, Residency.Side.HOST);
        paramsChanged(b);
    }

    /**
     * Buffers uploaded since the last launch. Aparapi's explicit {@code put} only marks an array: the copy to the device
     * happens at the next launch, while {@code get} copies at once. So until a launch, the host copy of these is the
     * truth and the device's is stale, and a download would overwrite the host with it (invisible where the device
     * aliases host memory; on a GPU the upload is lost: found by the copy-mode tests).
     */
    final java.util.Set<Buffer> pendingUploads = new java.util.HashSet<>();

    public void upload(Buffer b) {
        if (training && b.equals(Buffer.TOKENS)) {
            tokenGroups = TokenIndex.build(k.tok, tokenRows);
        }
        pendingUploads.add(b);
        paramsChanged(b);
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

    // the buffers grew (or shrank) by n floats
    private void grow(long n) {
        logicalFloats += n;
        held(4 * n);
    }

    private static synchronized void held(long bytes) {
        live += bytes;
        peak = Math.max(peak, live);
    }

    /**
     * Bytes of the device buffers every open OpenClOps of this process holds now (as sized: {@link #deviceBytes}
     * summed), counted as they are allocated, resized and closed.
     */
    public static synchronized long liveDeviceBytes() {
        return live;
    }

    /** The most {@link #liveDeviceBytes} has been since the last {@link #resetPeak}. */
    public static synchronized long peakDeviceBytes() {
        return peak;
    }

    /** Starts measuring {@link #peakDeviceBytes} from the bytes held now. */
    public static synchronized void resetPeak() {
        peak = live;
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
        grow(cos.length + sin.length - 2);
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
            grow(2L * (n - sizes.get(m1)));
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

    // the exchange buffer holds at least n floats (it grows to the largest range asked for, and stays)
    final void ensureExchange(int n) {
        if (sizes.get(Buffer.EXCHANGE) < n) {
            grow(n - sizes.get(Buffer.EXCHANGE));
            allocate(Buffer.EXCHANGE, n);
            upload(Buffer.EXCHANGE);
        }
    }

    /**
     * Keeps a bfloat16 copy of every parameter segment on the device (LoopKernel's {@code wh0..}, 2 bytes per
     * parameter, device-only), for the tensor-core GEMM to read its weight operand from ({@link GemmOps}); the copy is
     * made from the fp32 parameters before the first product that reads a segment changed since.
     */
    final void keepWeightCopy() {
        if (weightCopy) {
            return;
        }
        weightCopy = true;
        for (int seg = 0; seg < segments.length; seg++) {
            int n = (int) bf16Floats(segments[seg]);
            float[] a = HostArrays.floats(n);
            bind("wh" + seg, a);
            guard("wh" + seg, a, n);
            grow(n - 1L);
            copyStale[seg] = true;
        }
    }

    /**
     * Floats of a buffer or region holding {@code values} 16-bit values, two per float: the stash in bfloat16, the
     * weights' copy, the activation copies.
     */
    public static long bf16Floats(long values) {
        return (values + 1) / 2;
    }

    /** Whether {@link #keepWeightCopy} was asked for. */
    public boolean weightCopy() {
        return weightCopy;
    }

    /** Whether segment seg's parameters changed since its bfloat16 copy was made (true: it must be made again). */
    final boolean weightCopyStale(int seg) {
        return copyStale[seg];
    }

    /** The copy of segment seg was just made from its parameters. */
    final void weightCopyMade(int seg) {
        copyStale[seg] = false;
    }

    /** Whether this model has gradient and moment buffers. */
    public boolean training() {
        return training;
    }

    private void setStash(int i, float[] a, int n) {
        bind("s" + i, a);
        guard("s" + i, a, n);
    }

    final void reads(Buffer... bs) {
        for (Buffer b : bs) {
            if (!training && b.trainingOnly()) {
                throw new IllegalStateException("a forward-only model has no " + b + " buffer");
            }
            residency.requireDevice(b);
        }
    }

    final void wrote(Buffer b) {
        residency.set(b, Residency.Side.DEVICE);
        paramsChanged(b);
    }

    /** A device op wrote act[off, off + len) and nothing else: only the activation copies of ranges it overlaps go. */
    final void wroteAct(long off, long len) {
        residency.set(Buffer.ACT, Residency.Side.DEVICE);
        for (int s = 0; s < ACT_COPY_SLOTS; s++) {
            if (off < actCopyFrom[s] + actCopyLen[s] && actCopyFrom[s] < off + len) {
                actCopyLen[s] = 0;
            }
        }
    }

    /** Slot s now holds a fresh bfloat16 copy of act[from, from + len). */
    final void actCopyMade(int s, long from, long len) {
        actCopyFrom[s] = from;
        actCopyLen[s] = len;
    }

    /** Whether slot s holds a fresh copy of act[from, from + len) (from there, at least that long). */
    final boolean actCopyFresh(int s, long from, long len) {
        return actCopyLen[s] > 0 && actCopyFrom[s] == from && actCopyLen[s] >= len;
    }

    /** Whether slot s holds a fresh copy of anything. */
    final boolean actCopyHeld(int s) {
        return actCopyLen[s] > 0;
    }

    // the weight copy of a parameter segment is stale once the segment is written, on either side, and every
    // activation copy once the arena is written where it is not known (an op that says only ACT, the host)
    private void paramsChanged(Buffer b) {
        if (b.kind() == Buffer.Kind.PARAMS) {
            copyStale[b.index()] = true;
        }
        if (b.kind() == Buffer.Kind.ACT) {
            java.util.Arrays.fill(actCopyLen, 0);
        }
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
    static boolean readable(Buffer b) {
        return b.kind() == Buffer.Kind.ACT || b.kind() == Buffer.Kind.PARAMS;
    }

    public void close() {
        if (!closed) {
            closed = true;
            held(-4 * logicalFloats);
        }
        k.dispose();
    }
}
