package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import com.aparapi.Kernel;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.internal.opencl.OpenCLPlatform;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code deploy/gpu-check.sh} records about a machine's OpenCL devices and about the first build of the kernel
 * program on one of them, as {@code key=value} lines, each part closed by one {@code RESULT <part> ...} line that the
 * script copies into its results.
 *
 * <ul>
 *   <li>{@code GpuFacts [devices]}: every platform and device with its limits (global memory, largest allocation,
 *   local memory, compute units, work-group size, work-item sizes) and the platform's version string (on NVIDIA it
 *   names the CUDA driver version; Aparapi does not expose {@code CL_DRIVER_VERSION}, the script takes the driver
 *   from {@code nvidia-smi} or {@code clinfo});</li>
 *   <li>{@code GpuFacts compile <device>}: builds the kernel program ({@link OpenClOps} on the device, which compiles
 *   {@link LoopKernel} with the hand-written ops), times it, and prints what the compiled kernel needs: its largest
 *   work-group ({@code CL_KERNEL_WORK_GROUP_SIZE}) against the {@value #LAUNCH_GROUP} items the GEMM and decode
 *   launches use, its private and local memory per item / group.</li>
 * </ul>
 */
public final class GpuFacts {

    /** The largest work-group the ops launch: the tiled GEMM (16 x 16, 8 x 32) and the fused decode step. */
    static final int LAUNCH_GROUP = 256;

    private GpuFacts() {
    }

    public static void main(String[] args) {
        String mode = args.length > 0 ? args[0] : "devices";
        if (mode.equals("compile")) {
            compile(args.length > 1 ? args[1] : "gpu", io.ouro.worker.model.MatmulPrecision.parse(
                    args.length > 2 ? args[2] : "fp32"));
        } else if (mode.equals("devices")) {
            devices();
        } else {
            System.err.println("usage: GpuFacts [devices] | compile <device spec> [fp32|bf16_tensor]");
            System.exit(2);
        }
    }

    /** Prints every device and its limits; the RESULT line has the count and the first GPU's (else device 0's). */
    static void devices() {
        List<OpenCLDevice> all = OpenClDevices.list();
        System.out.println("devices=" + all.size() + (all.isEmpty() ? " (no OpenCL runtime, ICD or device found)" : ""));
        Map<String, String> first = null;
        for (int i = 0; i < all.size(); i++) {
            Map<String, String> f = facts(all.get(i));
            for (Map.Entry<String, String> e : f.entrySet()) {
                System.out.println("opencl:" + i + "." + e.getKey() + "=" + e.getValue());
            }
            if (first == null || (all.get(i).getType() == com.aparapi.device.Device.TYPE.GPU && !"GPU".equals(first.get("type")))) {
                first = f;
                first.put("spec", "opencl:" + i);
            }
        }
        StringBuilder r = new StringBuilder("RESULT facts devices=" + all.size());
        if (first != null) {
            for (String key : new String[]{"spec", "name", "type", "global_mem_mib", "max_alloc_mib", "local_mem_kib",
                    "compute_units", "max_work_group", "fp32_peak_gflops", "bf16_tensor_peak_gflops"}) {
                r.append(' ').append(key).append('=').append(first.get(key).replace(' ', '_'));
            }
            r.append(" platform=").append(first.get("platform_version").replace(' ', '_'));
        }
        System.out.println(r);
    }

    /** One device's limits as key/value pairs (values as printed; names and versions may hold spaces). */
    static Map<String, String> facts(OpenCLDevice d) {
        Map<String, String> f = new LinkedHashMap<>();
        OpenCLPlatform p = d.getOpenCLPlatform();
        f.put("name", d.getName().trim());
        f.put("type", String.valueOf(d.getType()));
        f.put("platform", p.getName().trim());
        f.put("platform_vendor", p.getVendor().trim());
        f.put("platform_version", p.getVersion().trim());
        f.put("global_mem_bytes", Long.toString(d.getGlobalMemSize()));
        f.put("global_mem_mib", Long.toString(d.getGlobalMemSize() >> 20));
        f.put("max_alloc_bytes", Long.toString(d.getMaxMemAllocSize()));
        f.put("max_alloc_mib", Long.toString(d.getMaxMemAllocSize() >> 20));
        f.put("local_mem_bytes", Long.toString(d.getLocalMemSize()));
        f.put("local_mem_kib", Long.toString(d.getLocalMemSize() >> 10));
        f.put("compute_units", Integer.toString(d.getMaxComputeUnits()));
        f.put("max_work_group", Integer.toString(d.getMaxWorkGroupSize()));
        f.put("max_work_item_dims", Integer.toString(d.getMaxWorkItemDimensions()));
        f.put("max_work_item_sizes", Arrays.toString(d.getMaxWorkItemSize()).replace(" ", ""));
        String described = OpenClDevices.describe(d);
        f.put("fp32_peak_gflops", String.format(Locale.ROOT, "%.0f", DevicePeaks.fp32Gflops(described)));
        f.put("bf16_tensor_peak_gflops", String.format(Locale.ROOT, "%.0f", DevicePeaks.bf16TensorGflops(described)));
        // Aparapi sizes a buffer in a 32-bit int of bytes: the backend keeps each below 2^29 floats (HostArrays)
        f.put("largest_float_buffer_mib", Long.toString(Math.min(d.getMaxMemAllocSize(), 4L * HostArrays.MAX_FLOATS) >> 20));
        return f;
    }

    /** Builds the kernel program on the device and prints its compile time and per-kernel limits. */
    static void compile(String spec, io.ouro.worker.model.MatmulPrecision matmul) {
        OpenCLDevice d = OpenClDevices.select(DeviceSpec.parse(spec));
        System.out.println("device=" + OpenClDevices.describe(d));
        String advice = OpenClDevices.buildFlagAdvice(d);
        if (advice != null) {
            System.out.println("warning=" + advice);
        }
        System.out.println("matmul=" + matmul.yamlName());
        long t0 = System.nanoTime();
        // small buffers: the program and its first launch are the same whatever the model
        try (OpenClOps ops = new OpenClOps(d, new int[]{1 << 16}, 1 << 16, 1, 1, new int[0], true, matmul)) {
            double seconds = (System.nanoTime() - t0) / 1e9;
            Map<String, String> k = kernelFacts(ops.kernel(), d);
            k.put("tensor_core_ptx", Boolean.toString(ops.tensorCores()));
            k.put("gemm", String.valueOf(ops.effectiveGemm()));
            k.put("program_chars", Integer.toString(ClKernels.source().length()));
            StringBuilder r = new StringBuilder(String.format(Locale.ROOT, "RESULT compile compile_s=%.1f", seconds));
            for (Map.Entry<String, String> e : k.entrySet()) {
                System.out.println("LoopKernel." + e.getKey() + "=" + e.getValue());
                r.append(' ').append(e.getKey()).append('=').append(e.getValue().replace(' ', '_'));
            }
            System.out.println(r);
            String wg = k.get("kernel_max_work_group");
            if (wg.matches("\\d+") && Integer.parseInt(wg) < LAUNCH_GROUP) {
                System.out.println("FAILED compile: the kernel allows work-groups of " + wg + " items on this device, "
                        + "the GEMM and decode launches use " + LAUNCH_GROUP + " (too many registers per item)");
                System.exit(1);
            }
        }
    }

    /** What Aparapi's kernel queries say about a compiled kernel on a device ("unknown: why" where a query fails). */
    static Map<String, String> kernelFacts(Kernel kernel, OpenCLDevice d) {
        Map<String, String> f = new LinkedHashMap<>();
        f.put("kernel_max_work_group", query(() -> Integer.toString(kernel.getKernelMaxWorkGroupSize(d))));
        f.put("launch_max_work_group", Integer.toString(LAUNCH_GROUP));
        f.put("preferred_group_multiple", query(() -> Integer.toString(kernel.getKernelPreferredWorkGroupSizeMultiple(d))));
        f.put("private_mem_bytes_per_item",
                query(() -> Long.toString(kernel.getKernelMinimumPrivateMemSizeInUsePerWorkItem(d))));
        f.put("local_mem_bytes_in_use", query(() -> Long.toString(kernel.getKernelLocalMemSizeInUse(d))));
        f.put("local_mem_bytes_device", Long.toString(d.getLocalMemSize()));
        f.put("compile_work_group", query(() -> Arrays.toString(kernel.getKernelCompileWorkGroupSize(d)).replace(" ", "")));
        return f;
    }

    private interface Query {
        String get() throws Exception;
    }

    private static String query(Query q) {
        try {
            return q.get();
        } catch (Exception | LinkageError e) {
            return "unknown:" + e.getClass().getSimpleName();
        }
    }
}
