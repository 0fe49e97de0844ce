package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.internal.opencl.OpenCLKernel;
import com.aparapi.internal.opencl.OpenCLProgram;
import com.aparapi.opencl.OpenCL;

import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Whether a device runs the bfloat16 tensor-core instruction of {@code gemm_tc.cl}
 * ({@code mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32}, NVIDIA sm_80 and later): it does when a one-warp
 * program holding that instruction as inline PTX builds on it (NVIDIA's compiler rejects the instruction for an older
 * GPU) and computes a known product. Built and run through Aparapi's OpenCL program and kernel classes in a context of
 * its own, released afterwards ({@link #execute}), once per device per process ({@link #probe}), before LoopKernel's
 * program is built, and only when {@code train.matmul: bf16_tensor} asks for the instruction
 * ({@link ClKernels#install(io.ouro.worker.model.MatmulPrecision, OpenCLDevice)}); any failure means no. A device
 * that is not NVIDIA's is not probed. {@link OpenClOps} runs {@code GemmKernel.TENSOR} with the instruction only where
 * this said yes.
 */
public final class TensorCores {

    /** The probe's output: four accumulators for each of a warp's 32 lanes. */
    static final int OUT = 128;

    /**
     * One warp: A all 1, B all 2 (bfloat16), so every fp32 accumulator of the 16 x 8 product is 16 * 2 = 32. Only the
     * signature is used: {@link #execute} takes the kernel's argument descriptors from it.
     */
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

    /**
     * The ldmatrix check (gemm_tc.cl's OURO_TC_LDMATRIX): one warp stages a 32 x 4 uint tile in local memory, each
     * lane gives the address of row lane (16 bytes) to {@code ldmatrix.sync.aligned.m8n8.x4.shared.b16}, and lane l
     * must get word l % 4 of row 8 i + l / 4 in register i: the instruction, and the local pointer passed as a shared
     * address the way gemm_tc.cl passes it. A program of its own, so that its failing to build leaves the mma verdict.
     */
    static final String LDMATRIX_SOURCE = """
            __kernel void ouro_tc_probe_ldmatrix(__global float *out) {
                __local uint tile[128];
                const int lane = get_local_id(0);
                for (int j = 0; j < 4; j++) {
                    tile[lane * 4 + j] = (uint) (lane * 4 + j);
                }
                barrier(CLK_LOCAL_MEM_FENCE);
            #ifdef __NV_CL_C_VERSION
                uint r0, r1, r2, r3;
                const uint addr = (uint) (size_t) (tile + lane * 4);
                asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                             : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                             : "r"(addr));
                out[lane * 4] = (float) r0;
                out[lane * 4 + 1] = (float) r1;
                out[lane * 4 + 2] = (float) r2;
                out[lane * 4 + 3] = (float) r3;
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
        if (why == null) {
            String l = runLdmatrix(device);
            System.out.println("ldmatrix on " + OpenClDevices.describe(device) + ": "
                    + (l == null ? "yes (gemm_tc.cl loads its fragments with it)" : "no (" + l + "; gemm_tc.cl loads "
                    + "its fragments from local memory word by word)"));
        }
    }

    /** Whether the device's name or platform says NVIDIA (the only vendor whose compiler takes inline PTX). */
    public static boolean nvidia(OpenCLDevice device) {
        String d = OpenClDevices.describe(device).toUpperCase(Locale.ROOT);
        return d.contains("NVIDIA") || d.contains("CUDA") || d.contains("GEFORCE") || d.contains("TESLA") || d.contains("QUADRO");
    }

    /** Verdicts by device description ("" when the device runs the instruction, else why not): one probe each. */
    private static final Map<String, String> VERDICTS = new ConcurrentHashMap<>();

    /**
     * The probe's verdict: true only when the instruction built and gave the known product on every lane. Probes the
     * device the first time only; every later call in the process answers from that.
     */
    public static boolean probe(OpenCLDevice device) {
        return why(device) == null;
    }

    /** The probe's verdict as {@link #run} says it (null: the device runs the instruction), probed once per device. */
    public static String why(OpenCLDevice device) {
        String v = VERDICTS.computeIfAbsent(OpenClDevices.describe(device), d -> {
            String r = run(device);
            return r == null ? "" : r;
        });
        return v.isEmpty() ? null : v;
    }

    /** The ldmatrix verdicts by device description, as {@link #VERDICTS}. */
    private static final Map<String, String> LDMATRIX_VERDICTS = new ConcurrentHashMap<>();

    /**
     * Whether gemm_tc.cl may load its fragments with ldmatrix on this device: the mma probe passed ({@link #probe})
     * and the ldmatrix check ({@link #LDMATRIX_SOURCE}) built and gave every lane its rows; probed once per device.
     */
    public static boolean ldmatrix(OpenCLDevice device) {
        if (!probe(device)) {
            return false;
        }
        return LDMATRIX_VERDICTS.computeIfAbsent(OpenClDevices.describe(device), d -> {
            String r = runLdmatrix(device);
            return r == null ? "" : r;
        }).isEmpty();
    }

    /** Why ldmatrix does not run as gemm_tc.cl uses it, or null when it does (checks every time). */
    static String runLdmatrix(OpenCLDevice device) {
        return check(device, LDMATRIX_SOURCE, "ouro_tc_probe_ldmatrix", "the ldmatrix check", TensorCores::ldmatrixWrong);
    }

    /**
     * Runs a one-warp check program on an NVIDIA device: why it did not build or run, or what {@code wrong} finds in
     * its output, or null when it gave what was expected.
     */
    private static String check(OpenCLDevice device, String source, String name, String what,
                                java.util.function.Function<float[], String> wrong) {
        if (!nvidia(device)) {
            return "not an NVIDIA device";
        }
        float[] out;
        try {
            out = execute(device, source, name);
        } catch (RuntimeException | LinkageError e) {
            return what + " did not build or run: " + e;
        }
        return wrong.apply(out);
    }

    /** What is wrong with the ldmatrix check's output (lane l, register i: word l % 4 of row 8 i + l / 4), or null. */
    static String ldmatrixWrong(float[] out) {
        for (int lane = 0; lane < 32; lane++) {
            for (int i = 0; i < 4; i++) {
                float expected = (8 * i + lane / 4) * 4 + lane % 4;
                if (out[lane * 4 + i] != expected) {
                    return "the ldmatrix check gave " + out[lane * 4 + i] + " to lane " + lane + " register " + i
                            + ", expected " + expected;
                }
            }
        }
        return null;
    }

    /** Why the device does not run the instruction, or null when it does (probes every time: see {@link #probe}). */
    public static String run(OpenCLDevice device) {
        return check(device, SOURCE, "ouro_tc_probe", "the probe", out -> {
            // the first 4 per lane: the array is longer (HostArrays), and its tail stays NaN
            for (int i = 0; i < OUT; i++) {
                if (out[i] != 32.0f) {
                    return "the probe computed " + out[i] + " at " + i + ", expected 32";
                }
            }
            return null;
        });
    }

    /**
     * Builds {@link #SOURCE} on the device in a context of its own, runs {@code ouro_tc_probe} on one warp and
     * returns its output ({@link #OUT} floats and a tail, NaN where it wrote nothing), then releases what it made
     * whether or not it ran: the kernel and its buffer ({@code OpenCLKernel.dispose}: clReleaseMemObject,
     * clReleaseKernel) and the program with its queue and context ({@code OpenCLProgram.dispose}: clReleaseProgram,
     * clReleaseCommandQueue, clReleaseContext). Not through {@code OpenCLDevice.bind}: a bound interface names each
     * kernel after its Java method (here {@code probe}, which the source does not define, so the probe never passed),
     * and when the build fails it throws before handing back anything to dispose (the context would stay).
     */
    static float[] execute(OpenCLDevice device) {
        return execute(device, SOURCE, "ouro_tc_probe");
    }

    /** {@link #execute(OpenCLDevice)} for another one-warp program with the same argument, kernel {@code name}. */
    static float[] execute(OpenCLDevice device, String source, String name) {
        float[] out = HostArrays.floats(OUT);
        Arrays.fill(out, Float.NaN);
        OpenCLProgram program = null;
        OpenCLKernel kernel = null;
        try {
            program = new OpenCLProgram(device, source).createProgram(device);
            if (program == null) {
                throw new OpenClException("the probe's program was not created");
            }
            Method m = Probe.class.getMethod("probe", Range.class, float[].class);
            kernel = OpenCLKernel.createKernel(program, name, device.getArgs(m));
            if (kernel == null) {
                throw new OpenClException("the probe's program did not build (no kernel " + name + ")");
            }
            kernel.invoke(new Object[] {Range.create(device, 32, 32), out});
            return out;
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        } finally {
            if (kernel != null) {
                kernel.dispose();
            }
            if (program != null) {
                program.dispose();
            }
        }
    }
}
