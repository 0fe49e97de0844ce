package io.ouro.worker.opencl;

import com.aparapi.Kernel;
import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.internal.kernel.KernelRunner;
import com.aparapi.internal.model.ClassModel;
import com.aparapi.internal.writer.KernelWriter;
import io.ouro.worker.model.MatmulPrecision;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Hand-written OpenCL C ops in {@link LoopKernel}'s own program, so that they use its device buffers.
 *
 * <p>Why not Aparapi's OpenCL binding ({@code OpenCLDevice.bind}): its program gets a context of its own
 * ({@code createProgram} calls {@code clCreateContextFromType}), no buffer of a translated kernel can be passed to
 * it, and every call copies each array argument whole to the device before the launch and back after it
 * ({@code put}/{@code get} of the bound interface only print "not implemented"). See docs/opencl.md, "Why not Aparapi's
 * OpenCL binding".
 *
 * <p>How instead: Aparapi keeps one generated OpenCL source per Kernel class ({@code KernelRunner.openCLCache}) and
 * compiles what it finds there. Before the first LoopKernel is compiled, {@link #install()} puts there Aparapi's own
 * translation of LoopKernel with the body of {@code handWritten} replaced by a call into {@code hand.cl} (which
 * dispatches to the other resources, {@link #RESOURCES}). The
 * kernel's arguments, buffers and launches stay Aparapi's; the hand-written functions read the buffers through the
 * same {@code This} struct the translated ones use. Anything unexpected (the cache field, the marker function) is
 * an {@link OpenClException}, never a silent fall-back to the translation.
 */
public final class ClKernels {

    /** Ints per layer in the decode step's table, and after the layers (decode.cl's OURO_LT and OURO_VT). */
    static final int DECODE_LAYER_INTS = 11, DECODE_TAIL_INTS = 14;
    /** Phases per layer of the decode step (decode.cl's OURO_PHASES). */
    static final int DECODE_PHASES = 11;

    /** Queries per work item and the largest head size of the hand-written attention (gemm.cl's OURO_AQ, OURO_AHD). */
    static final int ATTN_QUERIES = 4, ATTN_MAX_HEAD = 128;

    /**
     * Work items per group of the flash attention (flash.cl's OURO_FQ: one query or key row each), and the floats of a
     * local tile it fills with rows (OURO_FTILE; the last FLASH_ROWS floats of the 64 x 65 tile hold per-row values).
     */
    static final int FLASH_ROWS = 64, FLASH_TILE = 4096;

    /** Micro-tile of the register-blocked GEMM: rows x columns of C per work item (gemm.cl's OURO_MR, OURO_NR). */
    static final int OUTER_MR = 8, OUTER_NR = 16;

    /**
     * The work-group reductions (reduce.cl): items per work-group of the cross-entropy (one group per row; the tree
     * runs in {@code tileA}, which holds 64 x 65 floats), and rows per block of the RMSNorm weight gradient's
     * partial sums (reduce.cl's OURO_CE_GROUP, OURO_DW_ROWS).
     */
    static final int CE_GROUP = 256, DW_ROWS = 128;

    /** The hand-written sources, in the order they are spliced (hand.cl dispatches to the others). */
    private static final String[] RESOURCES = {"buffers.cl", "gemm.cl", "decode.cl", "bf16.cl", "gemm_tc.cl", "xent.cl", "reduce.cl",
            "flash.cl", "hand.cl"};
    /** The translated functions whose bodies become calls into the hand-written source. */
    private static final String[][] MARKERS = {{"handWritten", "ouro_hand"}, {"handPhase", "ouro_phase"}};
    private static final System.Logger LOG = System.getLogger(ClKernels.class.getName());
    /** Devices whose fallback from bf16_tensor to fp32 was logged (once per device and process). */
    private static final java.util.Set<String> WARNED = new java.util.HashSet<>();
    private static String source;
    private static boolean tensorCorePtx;

    private ClKernels() {
    }

    /** Makes LoopKernel's program the translation plus the hand-written ops (fp32 unless installed already). */
    static synchronized void install() {
        if (source == null) {
            install(false, false);
        }
    }

    /**
     * Installs LoopKernel's program for an OpenClOps of {@code matmul} on {@code device} (before its kernel is
     * compiled) and says whether gemm_tc.cl issues the tensor-core instruction there.
     *
     * <p>The program defines OURO_TC_PTX only when {@code matmul} is {@link MatmulPrecision#BF16_TENSOR} and the
     * device passed {@link TensorCores#probe} ({@link #definesPtx}); the probe runs only then (a GPU, bf16_tensor
     * asked). Otherwise the program is the fp32 one, and the default path never depends on the instruction compiling.
     *
     * <p>The program is one per process (Aparapi keeps one source per kernel class, and reuses the binary it built
     * for a class on a device), so the first install decides, and a later one with the other setting
     * ({@link #resolve}):
     * <ul>
     *   <li>fp32 after bf16_tensor: runs on the tensor-core program. That is the right program: the define changes only
     *       the body of gemm_tc.cl, which an fp32 OpenClOps never launches unless forced ({@code useGemm(TENSOR)}), so
     *       its products are the fp32 ones. On an NVIDIA device that did not pass the probe the instruction would not
     *       build: an {@link OpenClException} says so.</li>
     *   <li>bf16_tensor after fp32 (on a device that passed the probe): an {@link OpenClException}: the program has no
     *       instruction, and the process cannot build another; start a new process (executor JVM).</li>
     * </ul>
     * bf16_tensor on a device without the instruction (a CPU, not NVIDIA, failed probe) runs the fp32 GEMMs and logs
     * why (once per device); it is never an error.
     *
     * @return whether {@code GemmKernel.TENSOR} runs the instruction on this device (else its emulation)
     */
    public static synchronized boolean install(MatmulPrecision matmul, OpenCLDevice device) {
        boolean gpu = device.getType() != Device.TYPE.CPU;
        boolean asked = matmul == MatmulPrecision.BF16_TENSOR;
        boolean want = definesPtx(matmul, asked && gpu && TensorCores.probe(device));
        if (asked && !want && WARNED.add(OpenClDevices.describe(device))) {
            LOG.log(System.Logger.Level.WARNING, "train.matmul bf16_tensor: " + OpenClDevices.describe(device)
                    + " does not run the tensor-core instruction (" + (gpu ? TensorCores.why(device) : "a CPU device")
                    + "); its products run in fp32");
        }
        boolean ptx = resolve(source == null ? null : tensorCorePtx, want,
                () -> !gpu || !TensorCores.nvidia(device) || TensorCores.probe(device), OpenClDevices.describe(device));
        // ldmatrix for the fragments only where the instruction is in and the device passed the ldmatrix check too
        install(ptx, ptx && gpu && TensorCores.nvidia(device) && TensorCores.ldmatrix(device));
        return ptx && gpu && TensorCores.nvidia(device) && TensorCores.probe(device);
    }

    /**
     * Whether an OpenClOps of {@code matmul} can be opened on {@code device} in this process: false only for
     * bf16_tensor on a device that runs the instruction after an fp32 program was built (see {@link #install}).
     */
    public static synchronized boolean serves(MatmulPrecision matmul, OpenCLDevice device) {
        boolean want = definesPtx(matmul, matmul == MatmulPrecision.BF16_TENSOR && device.getType() != Device.TYPE.CPU
                && TensorCores.probe(device));
        return source == null || tensorCorePtx || !want;
    }

    /** Whether LoopKernel's program defines OURO_TC_PTX: bf16_tensor asked, and the device passed the probe. */
    static boolean definesPtx(MatmulPrecision matmul, boolean probePassed) {
        return matmul == MatmulPrecision.BF16_TENSOR && probePassed;
    }

    /**
     * Whether the program defines OURO_TC_PTX after a request that wants {@code want} in a process whose program was
     * installed with {@code installed} (null: none yet); an {@link OpenClException} when the installed program does
     * not serve the request (see {@link #install(MatmulPrecision, OpenCLDevice)}).
     *
     * @param buildsPtx whether the requesting device compiles the define (not NVIDIA, or passed the probe); asked only
     *                  when the program has it and the request does not
     */
    static boolean resolve(Boolean installed, boolean want, java.util.function.BooleanSupplier buildsPtx,
                           String device) {
        if (installed == null || installed == want) {
            return want;
        }
        if (want) {
            throw new OpenClException("train.matmul bf16_tensor on " + device + ": LoopKernel's program in this "
                    + "process was built for fp32, without the tensor-core instruction (an fp32 model came first), and "
                    + "a process has one such program; run bf16_tensor in a process of its own");
        }
        if (!buildsPtx.getAsBoolean()) {
            throw new OpenClException("train.matmul fp32 on " + device + ": LoopKernel's program in this process "
                    + "holds the tensor-core instruction (a bf16_tensor model came first), which this device does not "
                    + "build; run it in a process of its own");
        }
        return true;
    }

    /**
     * Installs the program, with OURO_TC_PTX defined when {@code ptx}, so that on NVIDIA's compiler gemm_tc.cl issues
     * the tensor-core instruction, and OURO_TC_LDMATRIX when {@code ldmatrix}, so that it loads the fragments with
     * ldmatrix; a program installed already stays (callers decide through {@link #resolve}).
     */
    private static synchronized void install(boolean ptx, boolean ldmatrix) {
        if (source != null) {
            return;
        }
        String spliced = splice(accessors(translation()), (ptx ? "#define OURO_TC_PTX 1\n" : "")
                + (ldmatrix ? "#define OURO_TC_LDMATRIX 1\n" : "") + handWritten());
        Map<Class<? extends Kernel>, String> cache = openClCache();
        synchronized (cache) {
            String before = cache.get(LoopKernel.class);
            if (before != null && !before.equals(spliced)) {
                throw new OpenClException("LoopKernel was compiled before its hand-written ops were installed");
            }
            cache.put(LoopKernel.class, spliced);
        }
        source = spliced;
        tensorCorePtx = ptx;
    }

    /** Whether the installed program issues the tensor-core instruction on NVIDIA's compiler. */
    public static synchronized boolean tensorCorePtx() {
        return source != null && tensorCorePtx;
    }

    /** The OpenCL C program of LoopKernel as installed. */
    public static synchronized String source() {
        install();
        return source;
    }

    /**
     * The translation with the hand-written source before the first marker function and each marker's body replaced
     * by a call to its hand-written twin (same arguments).
     */
    static String splice(String translated, String handWritten) {
        String out = translated;
        int first = Integer.MAX_VALUE;
        for (String[] marker : MARKERS) {
            Matcher m = Pattern.compile("void (io_ouro_worker_opencl_\\w+?)__" + marker[0]
                    + "\\(This \\*this, int gx, int (\\w+), int lx, int ly\\)\\{\\n(?:.*\\n)*?\\}\\n").matcher(out);
            if (!m.find()) {
                throw new OpenClException("Aparapi's translation of LoopKernel has no " + marker[0]
                        + " function to replace");
            }
            int start = m.start(), end = m.end();
            String y = m.group(2);
            String call = "void " + m.group(1) + "__" + marker[0] + "(This *this, int gx, int " + y
                    + ", int lx, int ly){\n   " + marker[1] + "(this, gx, " + y + ", lx, ly);\n}\n";
            if (m.find()) {
                throw new OpenClException("Aparapi's translation of LoopKernel has two " + marker[0] + " functions");
            }
            out = out.substring(0, start) + call + out.substring(end);
            first = Math.min(first, start);
        }
        return out.substring(0, first) + handWritten + "\n" + out.substring(first);
    }

    /**
     * LoopKernel's buffer accessors as OpenCL C: Aparapi translates each of them (ar, pw, load ...) as a chain of
     * {@code if}s, one load or store per buffer, and every op inlines them at every access; the same accessor as one
     * select of a pointer and one load or store is a few instructions, which keeps the program small (pocl compiled the
     * chained form 2.5 times slower) and its loops straight. Same arguments, same result.
     */
    static String accessors(String translated) {
        String out = translated;
        String act = pick("b", "this->act"), w = pick("s", "this->w"), g = pick("s", "this->g");
        String[][] bodies = {
                {"float", "ar", "int g", "const int b = g >> " + LoopKernel.ACT_SHIFT + ";\n   return (" + act
                        + ")[g & " + LoopKernel.ACT_MASK + "];"},
                {"void", "aw", "int g, float v", "const int b = g >> " + LoopKernel.ACT_SHIFT + ";\n   (" + act
                        + ")[g & " + LoopKernel.ACT_MASK + "] = v;"},
                {"float", "pw", "int idx", "const int s = this->pseg;\n   return (" + w + ")[idx];"},
                {"void", "pset", "int idx, float v", "const int s = this->pseg;\n   (" + w + ")[idx] = v;"},
                {"float", "gr", "int idx", "const int s = this->pseg;\n   return (" + g + ")[idx];"},
                {"void", "gset", "int idx, float v", "const int s = this->pseg;\n   (" + g + ")[idx] = v;"},
                {"void", "gradAdd", "int idx, float v", "const int s = this->pseg;\n   __global float *p = " + g
                        + ";\n   p[idx] = p[idx] + v;"},
                {"float", "m1r", "int idx", "const int s = this->pseg;\n   return (" + pick("s", "this->ma")
                        + ")[idx];"},
                {"void", "m1w", "int idx, float v", "const int s = this->pseg;\n   (" + pick("s", "this->ma")
                        + ")[idx] = v;"},
                {"float", "m2r", "int idx", "const int s = this->pseg;\n   return (" + pick("s", "this->mb")
                        + ")[idx];"},
                {"void", "m2w", "int idx, float v", "const int s = this->pseg;\n   (" + pick("s", "this->mb")
                        + ")[idx] = v;"},
                {"float", "load", "int sel, int idx", "return *" + operand() + ";"},
                {"void", "store", "int sel, int idx, float v, int add", "__global float *p = " + operand()
                        + ";\n   *p = add == 1 ? *p + v : v;"},
                {"float", "slotLoad", "int slot, int idx", "return *" + slot() + ";"},
                {"void", "slotStore", "int slot, int idx, float x", "*" + slot() + " = x;"},
        };
        for (String[] b : bodies) {
            Matcher m = Pattern.compile(b[0] + " (io_ouro_worker_opencl_\\w+?)__" + b[1]
                    + "\\(This \\*this, [^)]*\\)\\{\\n(?:.*\\n)*?\\}\\n").matcher(out);
            if (!m.find()) {
                throw new OpenClException("Aparapi's translation of LoopKernel has no " + b[1] + " function to replace");
            }
            out = out.substring(0, m.start()) + b[0] + " " + m.group(1) + "__" + b[1] + "(This *this, "
                    + b[2] + "){\n   " + b[3].replace("\\n", "\n") + "\n}\n" + out.substring(m.end());
        }
        return out;
    }

    // one of the eight buffers prefix0..prefix7, by the int variable v
    private static String pick(String v, String prefix) {
        return pick(v, prefix, 8);
    }

    // one of the n buffers prefix0..prefix{n-1}, by the int expression v
    private static String pick(String v, String prefix, int n) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < n - 1; i++) {
            s.append(v).append(" == ").append(i).append(" ? ").append(prefix).append(i).append(" : ");
        }
        return s.append(prefix).append(n - 1).toString();
    }

    // element idx of a slot: 0 the activations (a global offset), 1 + i stash buffer i, as a pointer expression
    private static String slot() {
        return "(slot == 0 ? (" + pick("(idx >> " + LoopKernel.ACT_SHIFT + ")", "this->act") + ") + (idx & "
                + LoopKernel.ACT_MASK + ") : (" + pick("(slot - 1)", "this->s", LoopKernel.STASH_SLOTS) + ") + idx)";
        // the same select as ouro_stash (constants()), inline: the accessors come before the hand-written source
    }

    // the element idx of the operand sel names (LoopKernel.SEL_*), as a pointer expression
    private static String operand() {
        return "(sel == " + LoopKernel.SEL_ACT + " ? (" + pick("(idx >> " + LoopKernel.ACT_SHIFT + ")", "this->act")
                + ") + (idx & " + LoopKernel.ACT_MASK + ") : (sel < " + LoopKernel.SEL_GRADS + " ? (" + pick("sel", "this->w")
                + ") : (" + pick("(sel - " + LoopKernel.SEL_GRADS + ")", "this->g") + ")) + idx)";
    }

    private static String translation() {
        try {
            Kernel instance = new LoopKernel();
            return KernelWriter.writeToString(ClassModel.createClassModel(LoopKernel.class).getEntrypoint("run", instance));
        } catch (Exception e) {
            throw new OpenClException("cannot translate LoopKernel to OpenCL: " + e);
        }
    }

    /**
     * What the hand-written source shares with Java, defined into the program here so that each value is written once,
     * in Java: the buffer constants (buffers.cl), the hand-written ops' ids ({@link DeviceOp#define()}), and the
     * shapes the host sizes launches and tables by.
     */
    static String constants() {
        StringBuilder s = new StringBuilder();
        define(s, "OURO_ACT_SHIFT", LoopKernel.ACT_SHIFT);
        define(s, "OURO_ACT_MASK", LoopKernel.ACT_MASK);
        define(s, "OURO_SEL_GRADS", LoopKernel.SEL_GRADS);
        define(s, "OURO_SEL_ACT", LoopKernel.SEL_ACT);
        for (DeviceOp op : DeviceOp.values()) {
            if (op.handWritten()) {
                define(s, op.define(), op.hand);
            }
        }
        define(s, "OURO_AQ", ATTN_QUERIES);
        define(s, "OURO_AHD", ATTN_MAX_HEAD);
        define(s, "OURO_FQ", FLASH_ROWS);
        define(s, "OURO_FTILE", FLASH_TILE);
        define(s, "OURO_MR", OUTER_MR);
        define(s, "OURO_NR", OUTER_NR);
        define(s, "OURO_CE_GROUP", CE_GROUP);
        define(s, "OURO_DW_ROWS", DW_ROWS);
        define(s, "OURO_PHASES", DECODE_PHASES);
        define(s, "OURO_LT", DECODE_LAYER_INTS);
        define(s, "OURO_VT", DECODE_TAIL_INTS);
        s.append("/* stash buffer i (LoopKernel's s0 ..) */\n__global float *ouro_stash(This *this, int i) {\n    return ")
                .append(pick("i", "this->s", LoopKernel.STASH_SLOTS)).append(";\n}\n");
        return s.toString();
    }

    private static void define(StringBuilder s, String name, int value) {
        s.append("#define ").append(name).append(' ').append(value).append('\n');
    }

    private static String handWritten() {
        StringBuilder all = new StringBuilder(constants());
        for (String resource : RESOURCES) {
            try (InputStream in = ClKernels.class.getResourceAsStream(resource)) {
                if (in == null) {
                    throw new OpenClException("resource " + resource + " is missing from the classpath");
                }
                all.append(new String(in.readAllBytes(), StandardCharsets.UTF_8)).append('\n');
            } catch (IOException e) {
                throw new OpenClException("cannot read " + resource + ": " + e);
            }
        }
        return all.toString();
    }

    @SuppressWarnings("unchecked")
    private static Map<Class<? extends Kernel>, String> openClCache() {
        try {
            Field f = KernelRunner.class.getDeclaredField("openCLCache");
            f.setAccessible(true);
            return (Map<Class<? extends Kernel>, String>) f.get(null);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new OpenClException("Aparapi's KernelRunner.openCLCache is not reachable (" + e + "); the hand-written "
                    + "OpenCL C needs Aparapi 3.0.2's source cache");
        }
    }
}
