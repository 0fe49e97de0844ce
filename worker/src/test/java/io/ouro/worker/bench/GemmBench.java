package io.ouro.worker.bench;

import io.ouro.worker.opencl.DeviceSpec;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClOps;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import java.util.Locale;

/**
 * The OpenCL GEMM kernel alone, in the three layouts the training step uses (forward, input gradient,
 * weight gradient), against PyTorch's sgemm on the same CPU. {@code tests/bench.sh gemm [device] [size]}.
 */
public final class GemmBench {
    public static void main(String[] args) {
        String dev = args.length > 0 ? args[0] : "opencl:0";
        int size = args.length > 1 ? Integer.parseInt(args[1]) : 1024;
        boolean withTorch = !(args.length > 2 && args[2].equals("no-torch"));
        var device = OpenClDevices.select(DeviceSpec.parse(dev));
        int s = size;
        double[] best = new double[3];
        try (OpenClOps ops = new OpenClOps(device, s * s, 5 * s * s)) {
            // as in the model: room to transpose strided operands, which a CPU device uses (timed with them)
            ops.setTransposeScratch(3 * s * s, 2 * s * s);
            for (int layout = 0; layout < 3; layout++) {
                run(ops, layout, s); // warm-up and compile
                int reps = 3;
                long t0 = System.nanoTime();
                for (int i = 0; i < reps; i++) {
                    run(ops, layout, s);
                }
                best[layout] = 2.0 * s * s * (double) s * reps / ((System.nanoTime() - t0) / 1e9) / 1e9;
            }
        }
        double torch = withTorch ? TorchStep.sgemmGflops(size) : Double.NaN;
        String[] names = {"forward x.W^T", "input grad dY.W", "weight grad dY^T.X"};
        for (int i = 0; i < 3; i++) {
            System.out.printf(Locale.ROOT, "%-20s %6.1f GFLOP/s (%.0f%% of sgemm)%n", names[i], best[i], 100 * best[i] / torch);
        }
        System.out.printf(Locale.ROOT, "PyTorch sgemm %d^3: %.1f GFLOP/s%n", size, torch);
        double mean = (best[0] + best[1] + best[2]) / 3;
        System.out.printf(Locale.ROOT, "RESULT gemm size=%d fwd_gflops=%.1f dx_gflops=%.1f dw_gflops=%.1f torch_gflops=%.1f ratio=%.3f%n",
                size, best[0], best[1], best[2], torch, mean / torch);
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
