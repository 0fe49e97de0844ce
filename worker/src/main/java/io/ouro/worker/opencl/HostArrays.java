package io.ouro.worker.opencl;

import com.sun.management.HotSpotDiagnosticMXBean;

import java.lang.management.ManagementFactory;

/**
 * The Java arrays behind device buffers, allocated so that the garbage collector never moves them.
 *
 * <p>Aparapi creates each device buffer over its Java array's address ({@code CL_MEM_USE_HOST_PTR}), and on pocl's
 * CPU device the kernels read and write that host memory directly. When G1 moved such an array (an evacuation of
 * young or old regions), a later launch used the old address and wrote into whatever lived there: the ouro demo,
 * with a busy data path allocating on 16 threads, crashed the JVM in unrelated code three runs out of three, and ran
 * through with no collector at all (Epsilon) or with one reading thread. G1 never moves humongous objects (those of at
 * least half a region), so every array here is at least that large; the few megabytes this costs per model are
 * small against any real model. Other collectors move large arrays too: the OpenCL backend warns under them.
 */
public final class HostArrays {

    private static final System.Logger LOG = System.getLogger(HostArrays.class.getName());

    /** Elements (4 bytes) that make an array humongous under this JVM's G1 (1 when G1 is not in use). */
    static final int MIN_ELEMENTS = minimumElements();

    private HostArrays() {
    }

    /** A float array of at least {@code n} elements that G1 does not move. */
    public static float[] floats(int n) {
        return new float[Math.max(n, MIN_ELEMENTS)];
    }

    /** An int array of at least {@code n} elements that G1 does not move. */
    public static int[] ints(int n) {
        return new int[Math.max(n, MIN_ELEMENTS)];
    }

    private static int minimumElements() {
        try {
            HotSpotDiagnosticMXBean vm = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            if (!Boolean.parseBoolean(vm.getVMOption("UseG1GC").getValue())) {
                LOG.log(System.Logger.Level.WARNING, "the OpenCL backend keeps device buffers in Java arrays that must "
                        + "not move; it relies on G1 (the JDK's default collector), which this JVM does not use");
                return 1;
            }
            long region = Long.parseLong(vm.getVMOption("G1HeapRegionSize").getValue());
            return (int) (region / 2 / 4) + 1;
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot read the G1 region size (" + e + "); device buffers may move");
            return 1;
        }
    }
}
