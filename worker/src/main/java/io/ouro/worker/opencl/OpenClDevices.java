package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.internal.kernel.KernelManager;

import java.util.ArrayList;
import java.util.List;

/** The OpenCL devices this JVM can see, and the choice among them that a {@link DeviceSpec} makes. */
public final class OpenClDevices {

    private OpenClDevices() {
    }

    /** Every device of every platform, in platform order; empty when there is no OpenCL runtime. */
    public static List<OpenCLDevice> list() {
        // through Aparapi's KernelManager, so that the devices we hand to kernels are the ones it knows
        List<OpenCLDevice> all = new ArrayList<>();
        try {
            for (Device d : KernelManager.instance().getDefaultPreferences().getPreferredDevices(null)) {
                if (d instanceof OpenCLDevice) {
                    all.add((OpenCLDevice) d);
                }
            }
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            return List.of();
        }
        return all;
    }

    /** Prints the devices, one per line, with the spec that selects each. */
    public static void main(String[] args) {
        List<OpenCLDevice> all = list();
        System.out.println(all.isEmpty() ? "no OpenCL device" : describe(all).replace("; ", System.lineSeparator()));
    }

    /** The device the spec names, or an error that lists what there is. */
    public static OpenCLDevice select(DeviceSpec spec) {
        List<OpenCLDevice> all = list();
        switch (spec.kind()) {
            case GPU:
            case CPU: {
                Device.TYPE want = spec.kind() == DeviceSpec.Kind.GPU ? Device.TYPE.GPU : Device.TYPE.CPU;
                int seen = 0;
                for (OpenCLDevice d : all) {
                    if (d.getType() == want && seen++ == Math.max(0, spec.index())) {
                        return d;
                    }
                }
                throw new OpenClException("device " + spec + ": no OpenCL " + want + " device; available: " + describe(all));
            }
            case OPENCL_INDEX:
                if (spec.index() < all.size()) {
                    return all.get(spec.index());
                }
                throw new OpenClException("device " + spec + ": there are " + all.size() + " OpenCL devices; available: "
                        + describe(all));
            default:
                throw new IllegalArgumentException("device " + spec + " is not an OpenCL device");
        }
    }

    /** The build flags pocl needs for the GEMM's dot products to vectorize (Aparapi passes none itself). */
    public static final String POCL_FLAGS = "-cl-unsafe-math-optimizations";

    /**
     * A warning when {@code d} is pocl's CPU device and {@code POCL_EXTRA_BUILD_FLAGS} lacks
     * {@link #POCL_FLAGS}: without it LLVM may not reassociate float sums, the GEMM stays scalar and runs
     * about 3x slower. Null when there is nothing to say. The launchers and the test configuration set it.
     */
    public static String buildFlagAdvice(OpenCLDevice d) {
        String platform = d.getOpenCLPlatform().getVersion() + " " + d.getOpenCLPlatform().getName();
        if (!platform.toLowerCase(java.util.Locale.ROOT).contains("pocl")
                && !platform.contains("Portable Computing Language")) {
            return null;
        }
        String flags = System.getenv("POCL_EXTRA_BUILD_FLAGS");
        if (flags != null && (flags.contains(POCL_FLAGS) || flags.contains("-cl-fast-relaxed-math"))) {
            return null;
        }
        return "pocl without POCL_EXTRA_BUILD_FLAGS=" + POCL_FLAGS + ": the GEMM kernel will not vectorize"
                + " (about 3x slower); set it in the environment of this JVM";
    }

    /** "name (type, OpenCL version)" of one device. */
    public static String describe(OpenCLDevice d) {
        return d.getName() + " (" + d.getType() + ", " + d.getOpenCLPlatform().getVersion().trim() + ")";
    }

    static String describe(List<OpenCLDevice> all) {
        if (all.isEmpty()) {
            return "none (no OpenCL runtime or ICD found)";
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < all.size(); i++) {
            b.append(i == 0 ? "" : "; ").append("opencl:").append(i).append(' ').append(describe(all.get(i)));
        }
        return b.toString();
    }
}
