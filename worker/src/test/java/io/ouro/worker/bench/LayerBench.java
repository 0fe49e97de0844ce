package io.ouro.worker.bench;

import io.ouro.worker.TestData;
import io.ouro.worker.backend.MemoryPlan;
import io.ouro.worker.backend.StepCounts;
import io.ouro.worker.model.DecayPolicy;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.opencl.DeviceOp;
import io.ouro.worker.opencl.DeviceOp.Family;
import io.ouro.worker.opencl.DevicePeaks;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.OpenClOps;
import io.ouro.worker.opencl.OpenClStepOps;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One training step (forward, backward, clip, AdamW) of one recipe-shaped layer on the OpenCL backend: time per op
 * and per op family ({@link DeviceOp.Family}, from the backend's per-op profile), FLOPs and bytes per family as
 * {@link StepCounts} computes them from the shapes (counts, not hardware counters), the rates they make, and MFU
 * against the device's data-sheet fp32 and bf16 tensor-core peaks ({@link DevicePeaks}). {@code tests/bench.sh layer}
 * runs it; {@code deploy/gpu-check.sh}'s step stage too (in {@code --quick} mode at a tiny shape).
 *
 * <p>The step is the recipe's block cut to one layer plus what a step needs: the embedding, the final norm, the LM head
 * and its cross-entropy over a small vocabulary (256 by default: the recipes' 49152 would make the head, one product
 * per loop step, outweigh one layer as it does not the recipe's 24), the exit gate, the gradient clip and AdamW. Their
 * time is in their families: the head and the gate in gemm, the cross-entropy and the norms in reduce, the embedding's
 * gather in elementwise (its backward in reduce), the clip and AdamW in optimizer.
 *
 * <pre>LayerBench [device, default opencl:0] [key=value ...]</pre>
 * keys (defaults: the recipe's block, width 2048, 16 heads, FFN 5632, sequence 4096, T = 4, bf16 stash, layer
 * recomputation, micro-batch 1): {@code width=2048 heads=16 seq=4096 batch=1 layers=1 steps=4 vocab=256 ffn=5632 iters=2
 * stash=bf16|fp32 recompute=none|layer|loop_step matmul=fp32|bf16_tensor chunk=0 budget_s=30} (fewer timed steps
 * when the warm-up step says that {@code iters} of them would take longer than {@code budget_s}; 0: no limit). Last
 * line: {@code RESULT layer device=... width=... seq=... attention_ms=... gemm_ms=... reduce_ms=... elementwise_ms=...
 * optimizer_ms=... step_ms=... gflops=... mfu_fp32=... mfu_bf16=... ratio=...}: per step, the families' profiled
 * time, the step's wall time, its GEMM and attention FLOPs (recomputation included: what {@code ouro plan --rates}
 * divides by this rate) over it ({@code gflops}), the model's FLOPs (no recomputation) over it against each peak
 * ({@code mfu_*}, {@code n/a} without a known peak), and {@code ratio} = gflops / the fp32 peak ({@code n/a} without
 * one).
 */
public final class LayerBench {

    /** The families the result line always has, in its order. */
    static final Family[] KEYS = {Family.ATTENTION, Family.GEMM, Family.REDUCE, Family.ELEMENTWISE, Family.OPTIMIZER};

    private LayerBench() {
    }

    public static void main(String[] args) {
        // the device first, unless the arguments start with the keys (then opencl:0, the benchmarks' default)
        boolean named = args.length > 0 && !args[0].contains("=");
        String device = named ? args[0] : "opencl:0";
        Map<String, String> a = new LinkedHashMap<>();
        for (String kv : new String[]{"width=2048", "heads=16", "seq=4096", "batch=1", "layers=1", "steps=4",
                "vocab=256", "ffn=5632", "iters=2", "stash=bf16", "recompute=layer", "matmul=fp32", "chunk=0",
                "budget_s=30"}) {
            a.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
        }
        for (int i = named ? 1 : 0; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq < 0 || !a.containsKey(args[i].substring(0, eq))) {
                throw new IllegalArgumentException("argument '" + args[i] + "': expected key=value with a key of " + a.keySet());
            }
            a.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        int width = num(a, "width"), seq = num(a, "seq"), batch = num(a, "batch");
        int iters = num(a, "iters");
        LoopConfig cfg = new LoopConfig(num(a, "vocab"), width, num(a, "layers"), num(a, "heads"), num(a, "ffn"),
                num(a, "steps"), 10_000, 1e-6, 0.1, 0.02, 1);
        StepShape shape = new StepShape(batch, seq, batch, Recompute.parse(a.get("recompute")), num(a, "chunk"), 0,
                a.get("stash").equals("bf16")).withMatmul(MatmulPrecision.parse(a.get("matmul")));
        var dev = OpenClDevices.select(DeviceSpec.parse(device));
        String described = OpenClDevices.describe(dev);
        boolean cpu = dev.getType() == com.aparapi.device.Device.TYPE.CPU;
        ParamLayout layout = new ParamLayout(cfg);
        int n = batch * seq;
        double modelFlops = MemoryPlan.modelFlopsPerToken(cfg, seq) * n;
        MemoryPlan plan = MemoryPlan.of(cfg, shape, cpu, OpenClStepOps.deviceBufferFloats(dev));
        // the FLOPs ouro plan counts (GEMM and attention, recomputation included), so that gflops is a rate it can use
        double planFlops = plan.flopsPerToken() * n;
        Map<Family, StepCounts.Count> counts = new EnumMap<>(Family.class);
        for (Family f : Family.values()) {
            counts.put(f, StepCounts.of(f, cfg, shape, n));
        }
        StepCounts.Count all = StepCounts.step(cfg, shape, n);
        long heap = Runtime.getRuntime().maxMemory();
        System.out.printf(Locale.ROOT, "shape %s, batch %d x %d tokens (micro-batch %d), recompute %s, stash %s, matmul %s, "
                        + "%.1fM parameters, on %s%n", cfg, batch, seq, shape.micro(), shape.recompute().yamlName(),
                shape.bf16Stash() ? "bf16" : "fp32", shape.matmul().yamlName(), layout.totalSize() / 1e6, described);
        System.out.printf(Locale.ROOT, "includes: %d layer(s) looped T = %d times, and what a step needs: embedding, final "
                + "norm, LM head and cross-entropy over a vocabulary of %d, exit gate (their time in the gemm, reduce and "
                + "elementwise families), gradient clip and AdamW (optimizer)%n", cfg.layers(), cfg.steps(), cfg.vocab());
        System.out.printf(Locale.ROOT, "counted per step (from the shapes, not hardware counters): %.1f GFLOP, %.2f GB; "
                + "GEMM and attention (what ouro plan counts, recomputation included) %.1f GFLOP; the model's FLOPs (no "
                + "recomputation, what MFU counts) %.1f GFLOP%n", all.flops() / 1e9, all.bytes() / 1e9, planFlops / 1e9,
                modelFlops / 1e9);
        System.out.printf(Locale.ROOT, "plan: device %.1f MiB (activations %.1f MiB, stash %.1f MiB); device global "
                        + "memory %.1f MiB; heap: plan %.1f MiB, JVM limit %.1f MiB (Aparapi mirrors each buffer in a Java "
                        + "array)%s%n",
                mib(plan.deviceBytes()), mib(plan.activationBytes()), mib(plan.stashBytes()), mib(dev.getGlobalMemSize()),
                mib(plan.heapBytes()), mib(heap), plan.problem() == null ? "" : "; problem: " + plan.problem());
        System.out.println("load before: " + LoadAverage.line());
        if (plan.deviceBytes() > dev.getGlobalMemSize() || plan.heapBytes() > heap) {
            System.out.println("warning: the plan exceeds the device's memory or the JVM's heap; the step may fail");
        }
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
            // fewer timed steps when one is slow, so that the figures come within the time given
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
            Map<String, long[]> profile = ops.profile();
            Map<Family, Double> ms = new EnumMap<>(Family.class);
            double profiled = 0;
            List<Map.Entry<String, long[]>> byTime = new ArrayList<>(profile.entrySet());
            byTime.sort((x, y) -> Long.compare(y.getValue()[0], x.getValue()[0]));
            System.out.println("per-op time per step (profiled steps: each launch timed to its end):");
            for (Map.Entry<String, long[]> e : byTime) {
                double opMs = e.getValue()[0] / 1e6 / iters;
                Family f = DeviceOp.familyOf(e.getKey());
                profiled += opMs;
                ms.merge(f, opMs, Double::sum);
                System.out.printf(Locale.ROOT, "  %-42s %-11s %10.2f ms  (%d launches)%n", e.getKey(), f.key(), opMs,
                        e.getValue()[1] / iters);
            }
            double fp32 = DevicePeaks.fp32Gflops(described), bf16 = DevicePeaks.bf16TensorGflops(described);
            System.out.println("per family per step (GFLOP and GB counted from the shapes; rates = count / profiled time):");
            System.out.printf(Locale.ROOT, "  %-11s %10s %6s %10s %9s %10s %8s%n", "family", "ms", "%", "GFLOP", "GB",
                    "GFLOP/s", "GB/s");
            for (Family f : Family.values()) {
                double t = ms.getOrDefault(f, 0.0);
                StepCounts.Count c = counts.get(f);
                if (t == 0 && c.flops() == 0 && c.bytes() == 0) {
                    continue;
                }
                System.out.printf(Locale.ROOT, "  %-11s %10.2f %5.1f%% %10.2f %9.3f %10s %8s%n", f.key(), t,
                        profiled > 0 ? 100 * t / profiled : 0, c.flops() / 1e9, c.bytes() / 1e9,
                        t > 0 ? String.format(Locale.ROOT, "%.1f", c.flops() / 1e6 / t) : "-",
                        t > 0 ? String.format(Locale.ROOT, "%.2f", c.bytes() / 1e6 / t) : "-");
            }
            double gflops = planFlops / sec / 1e9, modelGflops = modelFlops / sec / 1e9;
            System.out.printf(Locale.ROOT, "step %.1f ms wall (profiled ops %.1f ms, the rest host work and launches), "
                            + "%.1f tok/s, %.1f GFLOP/s of GEMM and attention FLOPs (%.1f GFLOP/s of model FLOPs, %.1f of "
                            + "all families'), gemm kernel %s%s%n",
                    sec * 1e3, profiled, n / sec, gflops, modelGflops, all.flops() / sec / 1e9, ops.effectiveGemm(),
                    ops.usesTensorCores() ? " on bf16 tensor cores" : "");
            System.out.printf(Locale.ROOT, "peaks (data sheet): fp32 %s, bf16 tensor cores %s; MFU (model FLOPs): %s fp32, "
                            + "%s bf16%n", peak(fp32), peak(bf16), frac(modelGflops, fp32), frac(modelGflops, bf16));
            System.out.println("load after: " + LoadAverage.line());
            StringBuilder r = new StringBuilder(String.format(Locale.ROOT, "RESULT layer device=%s width=%d seq=%d",
                    token(dev.getName()), width, seq));
            for (Family f : KEYS) {
                r.append(String.format(Locale.ROOT, " %s_ms=%.1f", f.key(), ms.getOrDefault(f, 0.0)));
            }
            for (Map.Entry<Family, Double> e : ms.entrySet()) {
                if (!List.of(KEYS).contains(e.getKey())) {
                    r.append(String.format(Locale.ROOT, " %s_ms=%.1f", e.getKey().key(), e.getValue()));
                }
            }
            r.append(String.format(Locale.ROOT, " step_ms=%.1f gflops=%.1f mfu_fp32=%s mfu_bf16=%s ratio=%s", sec * 1e3,
                    gflops, frac(modelGflops, fp32), frac(modelGflops, bf16), frac(gflops, fp32)));
            System.out.println(r);
        }
    }

    private static String peak(double gflops) {
        return gflops > 0 ? String.format(Locale.ROOT, "%.0f GFLOP/s", gflops) : "unknown for this device";
    }

    /** {@code x / peak} to four places, or n/a without a peak. */
    static String frac(double x, double peak) {
        return peak > 0 ? String.format(Locale.ROOT, "%.4f", x / peak) : "n/a";
    }

    /** A device name as one token of a result line. */
    static String token(String name) {
        String t = name.trim().replaceAll("[^A-Za-z0-9._:-]+", "_");
        return t.length() > 48 ? t.substring(0, 48) : t;
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
