package io.ouro.worker.opencl;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;

/**
 * Launching {@link LoopKernel} with the op its setter chose: the launch shapes (one work item per element on a GPU, a
 * contiguous run per item on a CPU), the canary check after each launch, and the per-op profile.
 */
abstract class KernelLaunches extends DeviceBuffers {

    static final int GROUP = 64;
    /** Work items of an elementwise op on a CPU device: a few per core is enough, more only adds overhead. */
    private static final int CPU_ITEMS = 4096;

    private java.util.Map<String, long[]> profile;
    private boolean profileShapes;
    /**
     * The kernel's local-memory tiles at full size, and the one-float stand-ins bound for ops that use none: Aparapi
     * reads a {@code @Local} field's array at every launch and sets the argument's size from its length (KernelRunner
     * updateKernelArrayRefs; aparapi-native processLocalArray re-sets it when the length changed), so the local memory
     * a launch reserves is what its op uses ({@link DeviceOp#localTiles()}).
     */
    private final float[] fullTileA, fullTileB, noTileA = new float[1], noTileB = new float[1];
    /**
     * Whether launches bind the tiles by op (above). On a GPU, local memory reserved per work-group caps how many
     * groups an SM holds; a CPU device (pocl) runs a work-group as loops over its items and gains nothing, while the
     * re-binding cost 8% of the bench step there (docs/opencl.md). So: on devices that are not CPUs, and on pocl when
     * the tests run it as a GPU would be run (the discrete-memory execution, {@link DeviceMemory#FORCE_PROPERTY}).
     */
    private boolean localPerLaunch;

    KernelLaunches(OpenCLDevice device, int[] paramSegments, int[] momentSegments, long actSize, int metricsSize,
                   int rows, int[] stashSizes, boolean training) {
        super(device, paramSegments, momentSegments, actSize, metricsSize, rows, stashSizes, training);
        fullTileA = k.tileA;
        fullTileB = k.tileB;
        localPerLaunch = !cpuDevice || Boolean.getBoolean(DeviceMemory.FORCE_PROPERTY);
    }

    /** Binds the local-memory tiles by op (true) or at full size on every launch; the default is by device type. */
    public void useLocalPerLaunch(boolean on) {
        localPerLaunch = on;
    }

    /** Whether this device runs gemm_tc.cl with the tensor-core instruction (else its emulation). */
    public abstract boolean tensorCores();

    /**
     * An elementwise op over {@code count} elements. On a CPU device each work item takes a contiguous run
     * (about {@link #CPU_ITEMS} items in all), on a GPU one element each.
     */
    final void launchElementwise(int count) {
        int items = count;
        if (cpuDevice) {
            items = Math.min(count, CPU_ITEMS);
        }
        k.chunk = (Math.max(count, 1) + Math.max(items, 1) - 1) / Math.max(items, 1);
        items = (Math.max(count, 1) + k.chunk - 1) / k.chunk;
        launch1D(items);
        k.chunk = 1;
    }

    /** One work item per element of {@code count}, in groups of {@link #GROUP}. */
    final void launch1D(int count) {
        execute(Range.create(device, roundUp(Math.max(count, 1), GROUP), GROUP));
    }

    /** Launches the op set now over {@code range}, profiled under its {@link DeviceOp#profileName()}. */
    final void execute(Range range) {
        long t0 = profile == null ? 0 : System.nanoTime();
        DeviceOp op = k.current();
        String name = op == DeviceOp.CL_GEMM_TC && !tensorCores() ? DeviceOp.TC_EMULATED_NAME : op.profileName();
        if (profileShapes && op.gemm()) {
            name += String.format(java.util.Locale.ROOT, " %dx%dx%d a%d,%d b%d,%d%s", k.gm, k.gn, k.gk, k.aRs, k.aCs,
                    k.bRs, k.bCs, op == DeviceOp.CL_GEMM_OUTER && k.outerPackedB() ? " packedB" : "");
        }
        boolean tiles = op.localTiles() || !localPerLaunch;
        k.tileA = tiles ? fullTileA : noTileA;
        k.tileB = tiles ? fullTileB : noTileB;
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

    /** Op name ({@link DeviceOp#profileName()}) to {total nanoseconds, launches} since {@link #startProfile()}. */
    public java.util.Map<String, long[]> profile() {
        return profile == null ? java.util.Map.of() : profile;
    }

    static int roundUp(int x, int m) {
        return (x + m - 1) / m * m;
    }
}
