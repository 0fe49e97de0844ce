package io.ouro.worker.bench;

import io.ouro.worker.TestData;
import io.ouro.worker.backend.MemoryPlan;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.OpenClStepOps;

import java.lang.management.ManagementFactory;
import java.util.Locale;

/**
 * {@code tests/bench.sh memory [device] [steps] [chunk rows, 0 = the whole micro-batch]}: a d 512, 4-layer, T 4 model (8 heads, FFN 1408, vocabulary 8192) on
 * two 1024-token sequences per step as micro-batches of one, on the OpenCL backend, with recompute none, layer and
 * loop_step. For each: the device bytes the backend allocated (every buffer of the kernel) against the plan's
 * prediction ({@link MemoryPlan}, the same arithmetic {@code ouro plan} prints), the growth of the JVM heap (Aparapi
 * mirrors every device buffer in a Java array), and the time of a training step. Last line:
 * {@code RESULT memory none_mib=… layer_mib=… loop_step_mib=… plan_error=<worst |measured/plan - 1|> layer_ratio=…
 * loop_step_ratio=… ratio=<layer step time / none step time>} (medians over the steps; the modes take turns).
 */
public final class MemoryBench {

    private MemoryBench() {
    }

    public static void main(String[] args) throws Exception {
        String device = args.length > 0 ? args[0] : "opencl:0";
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        int chunk = args.length > 2 ? Integer.parseInt(args[2]) : 0;
        LoopConfig cfg = new LoopConfig(8192, 512, 4, 8, 1408, 4, 10_000, 1e-6, 0.1, 0.02, 1);
        int batch = 2, seqLen = 1024;
        var dev = OpenClDevices.select(DeviceSpec.parse(device));
        boolean cpu = dev.getType() == com.aparapi.device.Device.TYPE.CPU;
        System.out.printf(Locale.ROOT, "model %s, %.1fM parameters, batch %d x %d tokens, micro-batches of 1, on %s%n",
                cfg, new ParamLayout(cfg).totalSize() / 1e6, batch, seqLen, OpenClDevices.describe(dev));
        int n = batch * seqLen;
        int[] tokens = TestData.tokens(n, cfg.vocab(), 1), targets = TestData.targets(n, cfg.vocab(), 2);
        float[] params = TestData.params(new ParamLayout(cfg), 3);
        Recompute[] modes = Recompute.values();
        double[] mib = new double[3];
        double[][] times = new double[3][steps];
        double worst = 0;
        OpenClModel[] models = new OpenClModel[3];
        try {
            for (int i = 0; i < modes.length; i++) {
                StepShape shape = new StepShape(batch, seqLen, 1, modes[i], chunk, 0);
                MemoryPlan plan = MemoryPlan.of(cfg, shape, cpu, OpenClStepOps.deviceBufferFloats(dev));
                long heap0 = heapUsed();
                models[i] = new OpenClModel(cfg, dev, shape, false);
                models[i].setParameters(params);
                long allocated = models[i].ops().deviceBytes();
                long heap = heapUsed() - heap0;
                mib[i] = allocated / (double) (1 << 20);
                double err = Math.abs((double) allocated / plan.deviceBytes() - 1);
                worst = Math.max(worst, err);
                System.out.printf(Locale.ROOT, "recompute %-9s device %8.1f MiB allocated, plan %8.1f MiB (%+.2f%%; "
                                + "activations %.1f MiB, stash %.1f MiB in %d buffers), JVM heap +%.1f MiB%n",
                        modes[i].yamlName(), mib[i], plan.deviceBytes() / (double) (1 << 20), 100 * err,
                        plan.activationBytes() / (double) (1 << 20), plan.stashBytes() / (double) (1 << 20),
                        plan.stashBuffers(), heap / (double) (1 << 20));
                step(models[i], tokens, targets);
            }
            // the modes take turns, so that a change in the machine's speed reaches all of them alike
            for (int s = 0; s < steps; s++) {
                for (int i = 0; i < modes.length; i++) {
                    long t0 = System.nanoTime();
                    step(models[i], tokens, targets);
                    times[i][s] = (System.nanoTime() - t0) / 1e6;
                }
            }
        } finally {
            for (OpenClModel m : models) {
                if (m != null) {
                    m.close();
                }
            }
        }
        double[] ms = new double[3];
        for (int i = 0; i < 3; i++) {
            double[] t = times[i].clone();
            java.util.Arrays.sort(t);
            ms[i] = t[t.length / 2];
            System.out.printf(Locale.ROOT, "recompute %-9s step times %s ms (median %.0f)%n", modes[i].yamlName(),
                    java.util.Arrays.toString(java.util.Arrays.stream(times[i]).mapToLong(Math::round).toArray()), ms[i]);
        }
        System.out.printf(Locale.ROOT, "RESULT memory none_mib=%.1f layer_mib=%.1f loop_step_mib=%.1f plan_error=%.4f "
                        + "none_ms=%.0f layer_ms=%.0f loop_step_ms=%.0f layer_ratio=%.3f loop_step_ratio=%.3f ratio=%.3f%n",
                mib[0], mib[1], mib[2], worst, ms[0], ms[1], ms[2], ms[1] / ms[0], ms[2] / ms[0], ms[1] / ms[0]);
    }

    private static void step(OpenClModel m, int[] tokens, int[] targets) {
        m.zeroGradients();
        m.forwardBackward(tokens, targets, Objective.stageOne(0.1));
        m.clipGradients(1.0);
        m.adamw(3e-4, 0.9, 0.95, 1e-8, 0.1, io.ouro.worker.model.DecayPolicy.defaults(), t -> true);
    }

    private static long heapUsed() throws InterruptedException {
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(50);
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }
}
