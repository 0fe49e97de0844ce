package io.ouro.worker.bench;

import io.ouro.worker.TestData;
import io.ouro.worker.backend.Backends;
import io.ouro.worker.backend.OpenClBackend;
import io.ouro.worker.backend.TrainingBackend;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.opencl.OpenClOps;

import java.util.Locale;
import java.util.Map;

/**
 * The full training step (forward, backward, clip, AdamW) of the OpenCL backend, the Java backend and
 * the PyTorch implementation of the parity tests, on the same model and batch, in one process. Run with
 * {@code tests/bench.sh step [device] [batch] [seqLen] [iterations] [no-torch|torch] [fp32|bf16_tensor]} (the last:
 * {@code train.matmul} of the OpenCL backend, default fp32); the last line is
 * {@code RESULT step ours_tok_s=<x> java_tok_s=<y> torch_tok_s=<z> ratio=<x/z>}.
 */
public final class StepBench {

    private StepBench() {
    }

    public static void main(String[] args) {
        String device = args.length > 0 ? args[0] : "opencl:0";
        int batch = args.length > 1 ? Integer.parseInt(args[1]) : 4;
        int seqLen = args.length > 2 ? Integer.parseInt(args[2]) : 128;
        int iters = args.length > 3 ? Integer.parseInt(args[3]) : 2;
        // a GPU machine for deploy/gpu-check.sh has no PyTorch: "no-torch" skips that column
        boolean withTorch = args.length <= 4 || !args[4].equals("no-torch");
        MatmulPrecision matmul = args.length > 5 ? MatmulPrecision.parse(args[5]) : MatmulPrecision.FP32;
        LoopConfig cfg = LoopConfig.bench();
        ParamLayout layout = new ParamLayout(cfg);
        int n = batch * seqLen;
        int[] tokens = TestData.tokens(n, cfg.vocab(), 1);
        int[] targets = TestData.targets(n, cfg.vocab(), 2);
        Objective obj = Objective.stageOne(cfg.beta());
        double flops = ReferenceStepBench.trainingFlops(cfg, batch, seqLen);
        System.out.printf(Locale.ROOT, "bench shape: %s, batch %d x %d tokens, %.1fM parameters, %.1f model GFLOP/step%n",
                cfg, batch, seqLen, layout.totalSize() / 1e6, flops / 1e9);

        double torchPeak = withTorch ? TorchStep.sgemmGflops(1024) : Double.NaN;
        if (withTorch) {
            System.out.printf(Locale.ROOT, "sgemm peak (PyTorch matmul 1024^3 on this CPU): %.1f GFLOP/s%n", torchPeak);
        }

        double ours, translated = Double.NaN, java, torch = Double.NaN;
        double peak = torchPeak;
        try (TrainingBackend cl = Backends.open(device, cfg, AdamWConfig.ouro(),
                StepShape.whole(batch, seqLen).withMatmul(matmul))) {
            System.out.println("device: " + cl.describe() + ", POCL_EXTRA_BUILD_FLAGS=" + System.getenv("POCL_EXTRA_BUILD_FLAGS")
                    + "; load " + LoadAverage.line());
            if (cl instanceof OpenClBackend ocl) {
                double gemm = openClGemmGflops(ocl.model().ops().device(), 1024, OpenClOps.GemmKernel.AUTO, matmul);
                double twin = openClGemmGflops(ocl.model().ops().device(), 1024, OpenClOps.GemmKernel.TRANSLATED,
                        MatmulPrecision.FP32);
                System.out.printf(Locale.ROOT, "our OpenCL GEMM, forward 1024^3: OpenCL C %.1f GFLOP/s (%.0f%% of the sgemm "
                        + "peak), translated %.1f GFLOP/s (%.0f%%)%n", gemm, 100 * gemm / torchPeak, twin, 100 * twin / torchPeak);
                if (!withTorch) {
                    // the peak of the precision the products run in: bf16 tensor cores when they are on
                    boolean tc = ocl.model().ops().usesTensorCores();
                    double sheet = tc ? io.ouro.worker.opencl.DevicePeaks.bf16TensorGflops(cl.describe())
                            : io.ouro.worker.opencl.DevicePeaks.fp32Gflops(cl.describe());
                    peak = sheet > 0 ? sheet : gemm;
                    System.out.println(sheet > 0 ? "no PyTorch here: MFU below is against the device's " + (tc
                            ? "bf16 tensor-core" : "fp32") + " peak (data sheet, " + sheet + " GFLOP/s)"
                            : "no PyTorch here: MFU below is against our own GEMM kernel's rate");
                }
            }
            ours = timeBackend("ours (" + device + ")", cl, tokens, targets, obj, iters, flops, peak);
            if (cl instanceof OpenClBackend ocl) {
                // the same backend with the translated GEMM twin: the hand-written kernels' gain, and the same traffic
                ocl.model().ops().useGemm(OpenClOps.GemmKernel.TRANSLATED);
                translated = timeBackend("ours, translated GEMM", cl, tokens, targets, obj, iters, flops, peak);
                ocl.model().ops().useGemm(OpenClOps.GemmKernel.AUTO);
            }
        }
        try (TrainingBackend jb = Backends.open("java", cfg, AdamWConfig.ouro(), batch, seqLen)) {
            java = timeBackend("java", jb, tokens, targets, obj, iters, flops, peak);
        }
        if (withTorch) {
            double sec = TorchStep.secondsPerStep(layout, tokens, targets, batch, seqLen, obj, iters);
            torch = n / sec;
            report("pytorch", sec, n, flops, peak);
        }
        System.out.println("load after: " + LoadAverage.line());
        System.out.printf(Locale.ROOT, "RESULT step ours_tok_s=%.1f translated_tok_s=%.1f java_tok_s=%.1f torch_tok_s=%.1f "
                        + "translated_ratio=%.3f ratio=%.3f%n", ours, translated, java, torch, translated / torch, ours / torch);
    }

    static double timeBackend(String name, TrainingBackend b, int[] tokens, int[] targets, Objective obj, int iters,
                              double flops, double peak) {
        b.setParameters(ParamInit.initialize(b.layout()));
        Runnable step = () -> {
            b.zeroGradients();
            b.forwardBackward(tokens, targets, obj);
            b.clipGradients(1.0);
            b.adamw(3e-4, t -> true);
        };
        step.run();
        OpenClOps ops = b instanceof OpenClBackend o ? o.model().ops() : null;
        long up = ops == null ? 0 : ops.bytesUploaded(), down = ops == null ? 0 : ops.bytesDownloaded();
        if (ops != null) {
            ops.startProfile(Boolean.getBoolean("bench.gemmShapes"));
        }
        long t0 = System.nanoTime();
        for (int i = 0; i < iters; i++) {
            step.run();
        }
        double sec = (System.nanoTime() - t0) / 1e9 / iters;
        report(name, sec, tokens.length, flops, peak);
        if (ops != null) {
            System.out.printf(Locale.ROOT, "  host<->device per step: %.1f KB up, %.1f KB down%n",
                    (ops.bytesUploaded() - up) / 1024.0 / iters, (ops.bytesDownloaded() - down) / 1024.0 / iters);
            System.out.println("  per-op time per step:");
            double total = 0;
            for (long[] v : ops.profile().values()) {
                total += v[0];
            }
            for (Map.Entry<String, long[]> e : ops.profile().entrySet()) {
                System.out.printf(Locale.ROOT, "    %-20s %9.1f ms %5.1f%%  (%d launches)%n", e.getKey(),
                        e.getValue()[0] / 1e6 / iters, 100 * e.getValue()[0] / total, e.getValue()[1] / iters);
            }
        }
        return tokens.length / sec;
    }

    static void report(String name, double sec, int tokens, double flops, double peak) {
        double gflops = flops / sec / 1e9;
        System.out.printf(Locale.ROOT, "%-22s %9.1f ms/step %9.1f tok/s %7.2f GFLOP/s  MFU %.1f%%%n", name, sec * 1e3,
                tokens / sec, gflops, 100 * gflops / peak);
    }

    static double openClGemmGflops(com.aparapi.device.OpenCLDevice device, int size, OpenClOps.GemmKernel kernel,
                                   MatmulPrecision matmul) {
        try (OpenClOps ops = new OpenClOps(device, new int[] {size * size}, 4 * size * size, 1, 1, new int[0], true,
                matmul)) {
            ops.setTransposeScratch(2 * size * size, 2 * size * size); // room to pack operands, as in the model
            ops.useGemm(kernel);
            ops.linearForward(0, size * size, OpenClOps.Buffer.PARAMS, 0, size, size, size);
            int reps = 3;
            long t0 = System.nanoTime();
            for (int i = 0; i < reps; i++) {
                ops.linearForward(0, size * size, OpenClOps.Buffer.PARAMS, 0, size, size, size);
            }
            return 2.0 * size * size * size * reps / ((System.nanoTime() - t0) / 1e9) / 1e9;
        }
    }
}
