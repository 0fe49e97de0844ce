package io.ouro.worker.opencl;

import com.sun.management.HotSpotDiagnosticMXBean;

import java.lang.management.ManagementFactory;
import java.util.function.IntUnaryOperator;

/**
 * The Java arrays behind device buffers, allocated so that the garbage collector never moves them.
 *
 * <p>Aparapi creates each device buffer over its Java array's address ({@code CL_MEM_USE_HOST_PTR}), and on pocl's
 * CPU device the kernels read and write that host memory directly. When G1 moved such an array (an evacuation of
 * young or old regions), a later launch used the old address and wrote into whatever lived there: the ouro demo,
 * with a busy data path allocating on 16 threads, crashed the JVM in unrelated code three runs out of three, and ran
 * through with no collector at all (Epsilon) or with one reading thread. G1 never moves humongous objects (those of at
 * least half a region), so every array here is at least that large; the few megabytes this costs per model are
 * small against any real model. Other collectors (Serial, Parallel, ZGC, Shenandoah) move large arrays too: opening
 * an OpenCL backend under one of them is an error ({@link #requireCollector()}).
 */
public final class HostArrays {

    private static final System.Logger LOG = System.getLogger(HostArrays.class.getName());

    /**
     * The largest buffer in 4-byte elements. Aparapi 3.0.2 sizes every device buffer in a 32-bit int of bytes
     * ({@code KernelRunner} multiplies the length by the element size in an int; its native side keeps a jint and
     * passes it to clCreateBuffer and the transfers), so 2^29 floats or more would wrap to a negative or a small size:
     * a failed launch, or on a discrete GPU an undersized buffer written out of bounds. Models past it are cut into
     * several buffers (parameter segments, activation windows, stash buffers).
     */
    public static final int MAX_FLOATS = (1 << 29) - 64;

    /** Elements (4 bytes) that make an array humongous under this JVM's G1 (1 when G1 is not in use). */
    static final int MIN_ELEMENTS = minimumElements();

    /**
     * Test-only (-Douro.test.canary=true): every array carries {@link #CANARY_LENGTH} canary values just past its
     * logical end, inside the padding G1 needs anyway, so that a kernel writing past a buffer's end is caught
     * ({@link #canaryIntact}) instead of landing silently in the padding.
     */
    public static final boolean CANARY = Boolean.getBoolean("ouro.test.canary");
    /** Canary values after each array's logical end. */
    public static final int CANARY_LENGTH = 16;
    /** The canary's bits: a quiet NaN with a payload no kernel computes. */
    static final int CANARY_BITS = 0x7fe5c3a1;

    private HostArrays() {
    }

    /** A float array of at least {@code n} elements that G1 does not move. */
    public static float[] floats(int n) {
        float[] a = new float[padded(n)];
        if (CANARY) {
            java.util.Arrays.fill(a, n, Math.min(a.length, n + CANARY_LENGTH), Float.intBitsToFloat(CANARY_BITS));
        }
        return a;
    }

    /** An int array of at least {@code n} elements that G1 does not move. */
    public static int[] ints(int n) {
        int[] a = new int[padded(n)];
        if (CANARY) {
            java.util.Arrays.fill(a, n, Math.min(a.length, n + CANARY_LENGTH), CANARY_BITS);
        }
        return a;
    }

    /**
     * Whether the canary after the first {@code n} elements of a float[] or int[] allocated here is unchanged (always
     * true outside canary mode).
     */
    static boolean canaryIntact(Object array, int n) {
        IntUnaryOperator bits = bits(array);
        for (int i = n; CANARY && i < Math.min(length(array), n + CANARY_LENGTH); i++) {
            if (bits.applyAsInt(i) != CANARY_BITS) {
                return false;
            }
        }
        return true;
    }

    /**
     * The logical length of a float[] or int[] allocated here, found from its canary (canary mode only): what a buffer
     * holds, measured rather than counted.
     */
    static int logicalLength(Object array) {
        if (!CANARY) {
            throw new IllegalStateException("logical lengths are measured in canary mode (-Douro.test.canary=true)");
        }
        int len = length(array);
        for (int i = 0; i < len; i++) {
            if (canaryIntact(array, i) && i + CANARY_LENGTH <= len) {
                return i;
            }
        }
        return len;
    }

    private static IntUnaryOperator bits(Object array) {
        return array instanceof float[] f ? i -> Float.floatToRawIntBits(f[i]) : i -> ((int[]) array)[i];
    }

    private static int length(Object array) {
        return array instanceof float[] f ? f.length : ((int[]) array).length;
    }

    private static int padded(int n) {
        if (n < 0 || n > MAX_FLOATS) {
            throw new IllegalArgumentException("a device buffer of " + n + " elements: Aparapi 3.0.2 creates at most "
                    + MAX_FLOATS + " (its byte sizes are 32-bit ints)");
        }
        // in canary mode every array has room for its canary, however large (the device buffer carries it too)
        return Math.min(MAX_FLOATS, Math.max(n + (CANARY ? CANARY_LENGTH : 0), MIN_ELEMENTS));
    }

    private static int minimumElements() {
        try {
            HotSpotDiagnosticMXBean vm = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            if (!Boolean.parseBoolean(vm.getVMOption("UseG1GC").getValue())) {
                return 1; // Epsilon moves nothing; under any other collector requireCollector() refuses the device
            }
            long region = Long.parseLong(vm.getVMOption("G1HeapRegionSize").getValue());
            return (int) (region / 2 / 4) + 1;
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot read the G1 region size (" + e + "); device buffers may move");
            return 1;
        }
    }

    /** The collectors HotSpot selects with {@code -XX:+Use<name>GC}, in the order they are looked up. */
    private static final String[] COLLECTORS = {"G1", "Serial", "Parallel", "Z", "Shenandoah", "Epsilon"};

    /**
     * The garbage collector this JVM runs ({@code G1}, {@code Serial}, {@code Parallel}, {@code Z}, {@code Shenandoah},
     * {@code Epsilon}), or a description of why it is unknown.
     */
    public static String collectorInUse() {
        try {
            HotSpotDiagnosticMXBean vm = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            for (String c : COLLECTORS) {
                try {
                    if (Boolean.parseBoolean(vm.getVMOption("Use" + c + "GC").getValue())) {
                        return c;
                    }
                } catch (IllegalArgumentException absent) {
                    // this JVM has no such collector (Shenandoah in some builds; Epsilon without the experimental flag)
                }
            }
            return "unknown (none of -XX:+Use{G1,Serial,Parallel,Z,Shenandoah,Epsilon}GC is set)";
        } catch (RuntimeException e) {
            return "unknown (" + e + ")";
        }
    }

    /**
     * Refuses to put device buffers in Java arrays under a collector that moves large arrays: Aparapi hands the
     * arrays' addresses to the OpenCL driver, and a moved array would be read and written at its old address (see the
     * class comment). The OpenCL backend calls this before it allocates anything.
     */
    public static void requireCollector() {
        requireCollector(collectorInUse());
    }

    /** {@link #requireCollector()} for a JVM whose collector is {@code collector} (as {@link #collectorInUse()} says). */
    static void requireCollector(String collector) {
        if (collector.equals("G1") || collector.equals("Epsilon")) {
            return; // G1 never moves humongous arrays (every array here is one); Epsilon moves nothing
        }
        String name = collector.startsWith("unknown") ? "an unknown garbage collector: " + collector
                : "the " + collector + " garbage collector (-XX:+Use" + collector + "GC)";
        throw new IllegalStateException("the OpenCL backend keeps device buffers in Java arrays whose addresses the "
                + "OpenCL driver holds, so they must never move; this JVM runs " + name + ", which moves large arrays. "
                + "Run it with -XX:+UseG1GC (on a cluster: spark.executor.extraJavaOptions, which `ouro plan --config F"
                + " --spark-conf` prints; a JVM that sees one CPU picks Serial unless told)");
    }
}
