package io.ouro.worker.bench;

import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.opencl.DevicePeaks;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.opencl.TensorCores;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClOps;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.opencl.OpenClOps.GemmKernel;
import java.util.Locale;

/**
 * The OpenCL GEMM alone, in the three layouts the training step uses (forward, input gradient, weight gradient):
 * the hand-written OpenCL C kernel the step runs (the device's variant) and the translated twin, against PyTorch's
 * sgemm on the same CPU in the same run. {@code tests/bench.sh gemm [device] [size] [no-torch] [kernel]}; the ratio
 * is the hand-written kernel's mean over the layouts / sgemm. The kernel TENSOR opens the ops with
 * {@code train.matmul: bf16_tensor}, so that on a device that passes the probe it runs the tensor-core instruction;
 * it reads its operands from bfloat16 copies as the step does (the weights' copy for B of the forward and
 * input-gradient products, activation copies in 4 slots for the rest, each made once, before the timed rounds), and
 * is timed beside the same kernel fetching fp32 operands and rounding them as it stages them ({@code nocopy_*};
 * {@code copy_speedup} = the three products' mean rate with the copies over without).
 */
public final class GemmBench {
    public static void main(String[] args) {
        String dev = args.length > 0 ? args[0] : "opencl:0";
        int size = args.length > 1 ? Integer.parseInt(args[1]) : 1024;
        boolean withTorch = !(args.length > 2 && args[2].equals("no-torch"));
        GemmKernel handKernel = args.length > 3 ? GemmKernel.valueOf(args[3]) : GemmKernel.AUTO;
        var device = OpenClDevices.select(DeviceSpec.parse(dev));
        int s = size;
        double[] hand = new double[3], translated = new double[3], nocopy = new double[3];
        boolean tensor;
        MatmulPrecision matmul = handKernel == GemmKernel.TENSOR ? MatmulPrecision.BF16_TENSOR : MatmulPrecision.FP32;
        boolean bf16 = matmul == MatmulPrecision.BF16_TENSOR;
        long act = 5L * s * s + (bf16 ? 2L * s * s : 0);
        try (OpenClOps ops = new OpenClOps(device, new int[] {s * s}, act, 1, 1, new int[0], true, matmul)) {
            // as in the model: room to transpose operands, which the CPU kernels use (timed with them)
            ops.setTransposeScratch(3 * s * s, 2 * s * s);
            if (bf16) {
                // the activation copies' slots (as the bf16_tensor layout places them in the step), after the scratch
                int[] slots = new int[OpenClOps.ACT_COPY_SLOTS];
                for (int i = 0; i < slots.length; i++) {
                    slots[i] = 5 * s * s + i * (s * s / 2);
                }
                ops.setActivationCopy(slots, (long) s * s);
            }
            // the two kernels alternate, best of 3 rounds each: the CPU is shared, and a load spike then hits both
            for (int layout = 0; layout < 3; layout++) {
                for (int round = 0; round < 4; round++) {
                    for (int v = 0; v < (bf16 ? 3 : 2); v++) {
                        GemmKernel kernel = v == 1 ? GemmKernel.TRANSLATED : handKernel;
                        ops.useGemm(kernel);
                        ops.useWeightCopy(bf16 && v == 0);
                        ops.useActivationCopy(bf16 && v == 0);
                        long t0 = System.nanoTime();
                        run(ops, layout, s);
                        double gflops = 2.0 * s * s * (double) s / ((System.nanoTime() - t0) / 1e9) / 1e9;
                        double[] best = v == 1 ? translated : v == 2 ? nocopy : hand;
                        if (round > 0) { // round 0 compiles and warms up
                            best[layout] = Math.max(best[layout], gflops);
                        }
                    }
                }
            }
            ops.useGemm(handKernel);
            ops.useWeightCopy(bf16);
            ops.useActivationCopy(bf16);
            tensor = ops.usesTensorCores();
            System.out.println("hand-written kernel: " + handKernel + " on a " + (ops.cpuDevice() ? "CPU" : "GPU")
                    + " device" + (handKernel == GemmKernel.TENSOR ? (tensor ? ", tensor cores (bf16 operands)"
                    : ", tensor-core kernel EMULATED (no tensor cores: " + TensorCores.run(device) + ")") : "")
                    + "; load: " + LoadAverage.line());
        }
        double torch = withTorch ? TorchStep.sgemmGflops(size) : Double.NaN;
        String[] names = {"forward x.W^T", "input grad dY.W", "weight grad dY^T.X"};
        for (int i = 0; i < 3; i++) {
            System.out.printf(Locale.ROOT, "%-20s OpenCL C %6.1f GFLOP/s (%3.0f%% of sgemm), translated %6.1f GFLOP/s (%3.0f%%)%n",
                    names[i], hand[i], 100 * hand[i] / torch, translated[i], 100 * translated[i] / torch);
        }
        System.out.printf(Locale.ROOT, "PyTorch sgemm %d^3: %.1f GFLOP/s%n", size, torch);
        String described = OpenClDevices.describe(device);
        double sheet = tensor ? DevicePeaks.bf16TensorGflops(described) : DevicePeaks.fp32Gflops(described);
        if (sheet > 0) {
            System.out.printf(Locale.ROOT, "device %s peak (data sheet) %.0f GFLOP/s: OpenCL C %.1f%%, %.1f%%, %.1f%% per layout%n",
                    tensor ? "bf16 tensor-core" : "fp32", sheet, 100 * hand[0] / sheet, 100 * hand[1] / sheet,
                    100 * hand[2] / sheet);
        }
        double mean = (hand[0] + hand[1] + hand[2]) / 3, meanT = (translated[0] + translated[1] + translated[2]) / 3;
        // peak: the data sheet's for the precision the products ran in (0 when the device is not in DevicePeaks)
        System.out.printf(Locale.ROOT, "RESULT gemm size=%d kernel=%s tensor_cores=%b fwd_gflops=%.1f dx_gflops=%.1f "
                        + "dw_gflops=%.1f translated_fwd_gflops=%.1f translated_dx_gflops=%.1f translated_dw_gflops=%.1f "
                        + "torch_gflops=%.1f translated_ratio=%.3f%s ratio=%.3f peak_gflops=%.0f peak_fraction=%.4f%n",
                size, handKernel, tensor, hand[0], hand[1], hand[2], translated[0], translated[1], translated[2], torch,
                meanT / torch, !bf16 ? "" : String.format(Locale.ROOT, " nocopy_fwd_gflops=%.1f nocopy_dx_gflops=%.1f "
                        + "nocopy_dw_gflops=%.1f copy_speedup=%.3f", nocopy[0], nocopy[1], nocopy[2],
                        (hand[0] + hand[1] + hand[2]) / (nocopy[0] + nocopy[1] + nocopy[2])),
                mean / torch, sheet, sheet > 0 ? mean / sheet : Double.NaN);
    }

    static void run(OpenClOps ops, int layout, int s) {
        int x = 0, y = s * s, z = 2 * s * s;
        if (layout == 0) {
            ops.linearForward(z, x, Buffer.PARAMS, 0, s, s, s);
        } else if (layout == 1) {
            ops.linearBackwardInput(z, y, Buffer.PARAMS, 0, s, s, s);
        } else {
            ops.linearBackwardWeight(Buffer.GRADS, 0, y, x, s, s, s);
        }
    }
}
