package io.ouro.worker.bench;

import io.ouro.worker.TestData;
import io.ouro.worker.backend.MemoryPlan;
import io.ouro.worker.model.DecayPolicy;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.opencl.DevicePeaks;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.OpenClOps;
import io.ouro.worker.opencl.OpenClStepOps;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One training step (forward, backward, clip, AdamW) of the OpenCL backend at a shape given on the command line, with
 * no PyTorch: time per step, per op kind, and MFU against the device's data-sheet peak. {@code deploy/gpu-check.sh}
 * runs it at a recipe-shaped block (width 2048, 16 heads, sequence 4096, one layer, T = 4, bf16 stash, layer
 * recomputation) and, in {@code --quick} mode, at a tiny one.
 *
 * <pre>ShapeStepBench device [key=value ...]</pre>
 * keys (defaults: the recipe's block): {@code width=2048 heads=16 seq=4096 batch=1 layers=1 steps=4 vocab=49152
 * ffn=5632 iters=2 stash=bf16|fp32 recompute=none|layer|loop_step matmul=fp32|bf16_tensor chunk=0 budget_s=30} (fewer timed steps when the
 * warm-up step says that {@code iters} of them would take longer than {@code budget_s}; 0: no limit). Last line:
 * {@code RESULT step ms=<per step> tok_s=... gflops=... mfu=<fraction of the peak, or nan> peak_gflops=... <kind>_ms=...}
 * with the op kinds gemm, attention, cross_entropy, norm, other.
 */
public final class ShapeStepBench {

    private ShapeStepBench() {
    }

    public static void main(String[] args) {
        String device = args.length > 0 ? args[0] : "gpu";
        Map<String, String> a = new LinkedHashMap<>(Map.of("width", "2048", "heads", "16", "seq", "4096", "batch", "1",
                "layers", "1", "steps", "4", "vocab", "49152", "ffn", "5632", "iters", "2", "stash", "bf16"));
        a.put("recompute", "layer");
        a.put("matmul", "fp32");
        a.put("chunk", "0");
        a.put("budget_s", "30");
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq < 0 || !a.containsKey(args[i].substring(0, eq))) {
                throw new IllegalArgumentException("argument '" + args[i] + "': expected key=value with a key of " + a.keySet());
            }
            a.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        int width = num(a, "width"), heads = num(a, "heads"), seq = num(a, "seq"), batch = num(a, "batch");
        int iters = num(a, "iters");
        LoopConfig cfg = new LoopConfig(num(a, "vocab"), width, num(a, "layers"), heads, num(a, "ffn"), num(a, "steps"),
                10_000, 1e-6, 0.1, 0.02, 1);
        StepShape shape = new StepShape(batch, seq, batch, Recompute.parse(a.get("recompute")), num(a, "chunk"), 0,
                a.get("stash").equals("bf16")).withMatmul(io.ouro.worker.model.MatmulPrecision.parse(a.get("matmul")));
        var dev = OpenClDevices.select(DeviceSpec.parse(device));
        boolean cpu = dev.getType() == com.aparapi.device.Device.TYPE.CPU;
        ParamLayout layout = new ParamLayout(cfg);
        double flops = ReferenceStepBench.trainingFlops(cfg, batch, seq);
        MemoryPlan plan = MemoryPlan.of(cfg, shape, cpu, OpenClStepOps.deviceBufferFloats(dev));
        long heap = Runtime.getRuntime().maxMemory();
        System.out.printf(Locale.ROOT, "shape %s, batch %d x %d tokens, recompute %s, stash %s, %.1fM parameters, "
                        + "%.1f model GFLOP per step, on %s%n", cfg, batch, seq, shape.recompute().yamlName(),
                shape.bf16Stash() ? "bf16" : "fp32", layout.totalSize() / 1e6, flops / 1e9, OpenClDevices.describe(dev));
        System.out.printf(Locale.ROOT, "plan: device %.1f MiB (activations %.1f MiB, stash %.1f MiB); device global "
                        + "memory %.1f MiB; heap: plan %.1f MiB, JVM limit %.1f MiB (Aparapi mirrors each buffer in a Java "
                        + "array)%s; load %s%n",
                mib(plan.deviceBytes()), mib(plan.activationBytes()), mib(plan.stashBytes()), mib(dev.getGlobalMemSize()),
                mib(plan.heapBytes()), mib(heap), plan.problem() == null ? "" : "; problem: " + plan.problem(),
                LoadAverage.line());
        if (plan.deviceBytes() > dev.getGlobalMemSize() || plan.heapBytes() > heap) {
            System.out.println("warning: the plan exceeds the device's memory or the JVM's heap; the step may fail");
        }
        int n = batch * seq;
        int[] tokens = TestData.tokens(n, cfg.vocab(), 1), targets = TestData.targets(n, cfg.vocab(), 2);
        Objective obj = Objective.stageOne(cfg.beta());
        long t0 = System.nanoTime();
        try (OpenClModel m = new OpenClModel(cfg, dev, shape, false)) {
            m.setParameters(ParamInit.initialize(layout));
            System.out.printf(Locale.ROOT, "set-up (allocate, compile, upload) %.1f s; device bytes %.1f MiB%n",
                    (System.nanoTime() - t0) / 1e9, mib(m.ops().deviceBytes()));
            OpenClOps ops = m.ops();
            t0 = System.nanoTime();
            step(m, tokens, targets, obj);
            double warm = (System.nanoTime() - t0) / 1e9;
            // fewer timed steps when one is slow, so that the figures come within the check's time
            int budget = num(a, "budget_s");
            if (budget > 0 && iters > 1 && warm * iters > budget) {
                iters = Math.max(1, (int) (budget / warm));
            }
            System.out.printf(Locale.ROOT, "first step (warm-up) %.1f ms; timing %d step(s)%n", warm * 1e3, iters);
            ops.startProfile();
            t0 = System.nanoTime();
            for (int i = 0; i < iters; i++) {
                step(m, tokens, targets, obj);
            }
            double sec = (System.nanoTime() - t0) / 1e9 / iters;
            boolean tc = ops.usesTensorCores();
            double peak = tc ? DevicePeaks.bf16TensorGflops(OpenClDevices.describe(dev))
                    : DevicePeaks.fp32Gflops(OpenClDevices.describe(dev));
            double gflops = flops / sec / 1e9;
            Map<String, long[]> profile = ops.profile();
            double total = 0;
            for (long[] v : profile.values()) {
                total += v[0];
            }
            List<Map.Entry<String, long[]>> byTime = new ArrayList<>(profile.entrySet());
            byTime.sort((x, y) -> Long.compare(y.getValue()[0], x.getValue()[0]));
            System.out.println("per-op time per step (profiled steps: each launch timed to its end):");
            Map<String, Double> kinds = new LinkedHashMap<>();
            for (String k : new String[]{"gemm", "attention", "cross_entropy", "norm", "other"}) {
                kinds.put(k, 0.0);
            }
            for (Map.Entry<String, long[]> e : byTime) {
                double ms = e.getValue()[0] / 1e6 / iters;
                System.out.printf(Locale.ROOT, "  %-34s %10.2f ms %5.1f%%  (%d launches)%n", e.getKey(), ms,
                        100 * e.getValue()[0] / total, e.getValue()[1] / iters);
                kinds.merge(kind(e.getKey()), ms, Double::sum);
            }
            System.out.printf(Locale.ROOT, "step %.1f ms, %.1f tok/s, %.1f GFLOP/s, gemm %s%s%n", sec * 1e3, n / sec, gflops,
                    ops.effectiveGemm(), peak > 0 ? String.format(Locale.ROOT, ", MFU %.2f%% of the %s peak %.0f GFLOP/s",
                            100 * gflops / peak, tc ? "bf16 tensor-core" : "fp32", peak) : ", MFU: no data-sheet peak for this device");
            StringBuilder r = new StringBuilder(String.format(Locale.ROOT,
                    "RESULT step width=%d heads=%d seq=%d steps=%d layers=%d timed=%d ms=%.1f tok_s=%.1f gflops=%.1f mfu=%s "
                            + "peak_gflops=%.0f gemm=%s", width, heads, seq, cfg.steps(), cfg.layers(), iters, sec * 1e3, n / sec,
                    gflops, peak > 0 ? String.format(Locale.ROOT, "%.4f", gflops / peak) : "nan", peak, ops.effectiveGemm()));
            for (Map.Entry<String, Double> e : kinds.entrySet()) {
                r.append(String.format(Locale.ROOT, " %s_ms=%.1f", e.getKey(), e.getValue()));
            }
            System.out.println(r);
        }
    }

    /** The kind of an op by its profile name. */
    static String kind(String op) {
        String o = op.toLowerCase(Locale.ROOT);
        return o.startsWith("gemm") || o.startsWith("gemv") || o.startsWith("transpose") ? "gemm"
                : o.startsWith("attention") ? "attention"
                : o.startsWith("cross-entropy") ? "cross_entropy"
                : o.startsWith("rmsnorm") ? "norm" : "other";
    }

    private static void step(OpenClModel m, int[] tokens, int[] targets, Objective obj) {
        m.zeroGradients();
        m.forwardBackward(tokens, targets, obj);
        m.clipGradients(1.0);
        m.adamw(3e-4, 0.9, 0.95, 1e-8, 0.1, DecayPolicy.defaults(), t -> true);
    }

    private static int num(Map<String, String> a, String key) {
        return Integer.parseInt(a.get(key));
    }

    private static double mib(long bytes) {
        return bytes / (double) (1 << 20);
    }
}
