package io.ouro.worker.opencl;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.opencl.OpenCL;

import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Whether a device runs the bfloat16 tensor-core instruction of {@code gemm_tc.cl}
 * ({@code mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32}, NVIDIA sm_80 and later): it does when a one-warp
 * program holding that instruction as inline PTX builds on it (NVIDIA's compiler rejects the instruction for an older
 * GPU) and computes a known product. Built and run through Aparapi's OpenCL binding ({@code OpenCLDevice.bind}),
 * once per device, before LoopKernel's program is built; any failure means no. A device that is not NVIDIA's is not
 * probed. {@link OpenClOps} runs {@code GemmKernel.TENSOR} with the instruction only where this said yes.
 */
public final class TensorCores {

    /** One warp: A all 1, B all 2 (bfloat16), so every fp32 accumulator of the 16 x 8 product is 16 * 2 = 32. */
    public interface Probe extends OpenCL<Probe> {
        @Kernel("ouro_tc_probe")
        Probe probe(Range range, @GlobalReadWrite("out") float[] out);
    }

    static final String SOURCE = """
            __kernel void ouro_tc_probe(__global float *out) {
                const int lane = get_local_id(0);
            #ifdef __NV_CL_C_VERSION
                const uint a = 0x3F803F80u, b = 0x40004000u;
                const float z = 0.0f;
                float d0, d1, d2, d3;
                asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                             "{%8,%9}, {%10,%11,%12,%13};"
                             : "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3)
                             : "r"(a), "r"(a), "r"(a), "r"(a), "r"(b), "r"(b), "f"(z), "f"(z), "f"(z), "f"(z));
                out[lane * 4] = d0;
                out[lane * 4 + 1] = d1;
                out[lane * 4 + 2] = d2;
                out[lane * 4 + 3] = d3;
            #else
                out[lane * 4] = -1.0f;
            #endif
            }
            """;

    private TensorCores() {
    }

    /** Prints the probe's verdict for a device ({@code deploy/gpu-check.sh}): {@code TensorCores [device spec]}. */
    public static void main(String[] args) {
        OpenCLDevice device = OpenClDevices.select(DeviceSpec.parse(args.length > 0 ? args[0] : "gpu"));
        String why = run(device);
        System.out.println("tensor cores on " + OpenClDevices.describe(device) + ": "
                + (why == null ? "yes (mma.sync bf16 built and gave the known product)" : "no (" + why + ")"));
    }

    /** Whether the device's name or platform says NVIDIA (the only vendor whose compiler takes inline PTX). */
    public static boolean nvidia(OpenCLDevice device) {
        String d = OpenClDevices.describe(device).toUpperCase(Locale.ROOT);
        return d.contains("NVIDIA") || d.contains("CUDA") || d.contains("GEFORCE") || d.contains("TESLA") || d.contains("QUADRO");
    }

    /** Verdicts by device description: every OpenClOps on a device asks, the probe builds and runs once. */
    private static final Map<String, Boolean> VERDICTS = new ConcurrentHashMap<>();

    /** The probe's verdict: true only when the instruction built and gave the known product on every lane. */
    public static boolean probe(OpenCLDevice device) {
        return VERDICTS.computeIfAbsent(OpenClDevices.describe(device), d -> run(device) == null);
    }

    /** Why the device does not run the instruction, or null when it does. */
    public static String run(OpenCLDevice device) {
        if (!nvidia(device)) {
            return "not an NVIDIA device";
        }
        float[] out = HostArrays.floats(128);
        Arrays.fill(out, Float.NaN);
        try {
            Probe p = device.bind(Probe.class, SOURCE);
            p.probe(Range.create(device, 32, 32), out);
        } catch (RuntimeException | LinkageError e) {
            return "the probe did not build or run: " + e;
        }
        for (int i = 0; i < out.length; i++) {
            if (out[i] != 32.0f) {
                return "the probe computed " + out[i] + " at " + i + ", expected 32";
            }
        }
        return null;
    }
}
