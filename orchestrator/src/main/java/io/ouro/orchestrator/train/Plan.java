package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.ConfigException;
import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.config.TrainSettings;
import io.ouro.worker.backend.MemoryPlan;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.opencl.DevicePeaks;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.TensorCores;
import io.ouro.worker.model.ParamLayout;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The resolved plan of a run, as {@code ouro plan} prints it and the driver logs it. */
public final class Plan {

    private Plan() {
    }

    public static List<String> describe(TrainConfig cfg) {
        List<String> out = new ArrayList<>();
        int w = cfg.train().workers();
        double totalFlops = 0;
        long totalTokens = 0;
        out.add(String.format(Locale.ROOT, "%s: %d stage(s), %d steps, %d workers, sources %s", cfg.file(),
                cfg.stages().size(), cfg.totalSteps(), w, sources(cfg)));
        for (Stage s : cfg.stages()) {
            long tokens = 0;
            for (long k = s.firstStep(); k < s.endStep(); k++) {
                tokens += (long) w * s.batchAt(k) * s.seqLen();
            }
            double flops = tokens * memory(s, Math.max(s.batchPerWorker(), s.batchStart()), cfg.train()).flopsPerToken();
            totalFlops += flops;
            totalTokens += tokens;
            LoopConfig m = s.model();
            out.add(String.format(Locale.ROOT,
                    "stage %s: steps %d–%d (%d), %s tokens, batch %s x %d tokens per worker (%s), T %d, beta %s, RoPE base %s,"
                            + " layers %d (%.1fM parameters)%s, lr %s, mixture %s (%s when a source runs out), %s, %.3g FLOP;"
                            + " %s",
                    s.name(), s.firstStep(), s.endStep() - 1, s.steps(), human(tokens), batch(s), s.seqLen(), global(s, w), m.steps(),
                    num(m.beta()), num(m.ropeBase()), m.layers(), new ParamLayout(m).totalSize() / 1e6,
                    s.upcycle() == null ? "" : " (upcycled by " + s.upcycle().mode() + ")", lr(s.lr()),
                    mixture(s.mixture()), s.onExhausted(), s.stageTwo() ? "Stage II (exit gate only, LM frozen)"
                            : "Stage I", flops, memory(cfg, s)));
        }
        out.add(String.format(Locale.ROOT, "total: %s tokens, %.3g FLOP, %s; checkpoints %s", human(totalTokens),
                totalFlops, matmul(cfg.train()), cfg.train().checkpointEvery() > 0 ? "every "
                        + cfg.train().checkpointEvery() + " steps" + minutes(cfg.train().recovery())
                        + " and at each stage end under " + cfg.run().out()
                        + ", last " + cfg.train().keepCheckpoints() + " kept" + retries(cfg.train().recovery())
                        : "off (a failed segment ends the run)") + validation(cfg.train().validation()));
        return out;
    }

    /** How often the held-out split is evaluated ({@code train.validation}). */
    static String validation(TrainSettings.Validation v) {
        return v.everySteps() <= 0 ? "; validation off" : String.format(Locale.ROOT, "; validation every %d steps and at"
                + " the end, on %d global batches of the held-out split (%s of each source's tokens)", v.everySteps(),
                v.batches(), num(100 * v.holdout()) + "%");
    }

    /** The wall-time cadence of checkpoints, as the plan's total line says it. */
    static String minutes(TrainSettings.Recovery r) {
        return r.checkpointEveryMinutes() > 0 ? " or " + num(r.checkpointEveryMinutes()) + " minutes of wall time"
                + " (whichever comes first)" : "";
    }

    /** The retry budget and back-off ({@code train.retry}). */
    static String retries(TrainSettings.Recovery r) {
        return String.format(Locale.ROOT, "; a failed segment is re-run from the last checkpoint, at most %d failures"
                + " per %d committed steps, %s", r.maxFailures(), r.windowSteps(), r.backoffSeconds() == 0
                ? "at once" : "after a back-off of " + num(r.backoffSeconds()) + " s doubling to "
                + num(r.backoffMaxSeconds()) + " s");
    }

    /**
     * The products' precision ({@code train.matmul}) and the peak the step line's MFU is measured against (see
     * {@link #mfuPeakGflops}).
     */
    static String matmul(TrainSettings train) {
        boolean tensor = train.matmul() == MatmulPrecision.BF16_TENSOR;
        String peak = train.peakGflops() > 0 ? "train.peak_gflops " + num(train.peakGflops())
                : tensor ? "the device's bf16 tensor-core peak where it runs tensor cores, its fp32 peak elsewhere"
                : "the device's fp32 peak";
        return "matmul " + train.matmul().yamlName() + (tensor ? " (bfloat16 operands, fp32 sums, on NVIDIA tensor "
                + "cores where the device passes the probe; fp32 products elsewhere)" : "") + ", MFU against " + peak;
    }

    /**
     * The peak (GFLOP/s) the step line's MFU is measured against on a backend that describes itself as
     * {@code described}: {@code train.peak_gflops} when set, else the bf16 tensor-core peak of a known device when
     * {@code train.matmul} is bf16_tensor and its GEMMs run on tensor cores, else its fp32 peak (0: unknown, no MFU).
     */
    public static double mfuPeakGflops(TrainSettings train, String described) {
        return train.peakGflops() > 0 ? train.peakGflops()
                : DevicePeaks.mfuPeakGflops(train.matmul() == MatmulPrecision.BF16_TENSOR, described);
    }

    /**
     * Memory per worker on the OpenCL backend on a GPU of {@code train.device_memory_gib} at the stage's largest batch:
     * the micro-batch and recomputation it runs with (the config's, or the plan's choice), device bytes by kind,
     * executor heap, FLOPs per token, and whether it fits.
     */
    static String memory(TrainConfig cfg, Stage s) {
        int b = Math.max(s.batchPerWorker(), s.batchStart());
        return memory(s, b, cfg.train()).describe(cfg.train().deviceBytes());
    }

    /**
     * When the config's device is an OpenCL device present on this machine, whether each stage's plan (sized for
     * {@code train.device_memory_gib}) fits its real global memory; nothing otherwise.
     */
    public static List<String> onThisDevice(TrainConfig cfg) {
        List<String> out = new ArrayList<>();
        if (cfg.train().device().equals("java")) {
            return out;
        }
        com.aparapi.device.OpenCLDevice dev;
        try {
            dev = io.ouro.worker.opencl.OpenClDevices.select(io.ouro.worker.model.DeviceSpec.parse(cfg.train().device()));
        } catch (RuntimeException e) {
            return out;
        }
        long mem = dev.getGlobalMemSize();
        out.add(String.format(Locale.ROOT, "this machine's %s: %s of global memory (the plan above is sized for %s)",
                io.ouro.worker.opencl.OpenClDevices.describe(dev), bytes(mem), bytes(cfg.train().deviceBytes())));
        out.add("  " + matmulHere(cfg.train(), dev));
        List<MemoryPlan> plans = memoryPlans(cfg);
        for (int i = 0; i < plans.size(); i++) {
            MemoryPlan p = plans.get(i);
            out.add(String.format(Locale.ROOT, "  stage %s: %s of %s here: %s", cfg.stages().get(i).name(),
                    bytes(p.deviceBytes()), bytes(mem), p.fits(mem) ? "fits" : "DOES NOT FIT this device"));
        }
        return out;
    }

    /** Whether the products run on tensor cores on {@code dev}, and the peak the step line's MFU then uses. */
    static String matmulHere(TrainSettings train, com.aparapi.device.OpenCLDevice dev) {
        String described = io.ouro.worker.opencl.OpenClDevices.describe(dev);
        String how = "matmul fp32";
        if (train.matmul() == MatmulPrecision.BF16_TENSOR) {
            // the rule ClKernels.install applies: a GPU that passed the probe (probed only when bf16_tensor asks)
            String why = dev.getType() == com.aparapi.device.Device.TYPE.CPU ? "a CPU device" : TensorCores.why(dev);
            how = why == null ? "matmul bf16_tensor on tensor cores here (the probe passed)"
                    : "matmul bf16_tensor: no tensor cores here (" + why + "), the products run in fp32";
            described += why == null ? ", " + DevicePeaks.ON_TENSOR_CORES : "";
        }
        double peak = mfuPeakGflops(train, described);
        return how + "; MFU against " + (peak > 0 ? String.format(Locale.ROOT, "%.0f GFLOP/s", peak)
                : "no known peak (set train.peak_gflops)");
    }

    /**
     * How a worker runs {@code batch} sequences of stage {@code s}: the config's micro_batch and recompute where set,
     * otherwise the plan's choice for the device memory (one rule for the driver's plan and every executor). A
     * {@code train.max_buffer_mib} past the device's largest buffer is an error naming the field.
     */
    public static MemoryPlan memory(Stage s, int batch, TrainSettings train) {
        long maxMib = OpenClModel.MAX_BUFFER_FLOATS * 4 / (1 << 20);
        if (train.maxBufferMib() > maxMib) {
            throw new ConfigException("train.max_buffer_mib: expected an integer in [0, " + maxMib
                    + "] (the device's largest buffer), got '" + train.maxBufferMib() + "'");
        }
        int shards = train.shardOptimizer() ? train.workers() : 1;
        long exchange = train.workers() > 1 ? train.bucketFloats() : 0;
        MemoryPlan p = MemoryPlan.choose(s.model(), batch, s.seqLen(), s.microBatch(), s.recompute(),
                s.recomputeChunk(), train.bufferLimitFloats(), train.deviceBytes(), OpenClModel.MAX_BUFFER_FLOATS,
                shards, exchange, train.bf16Stash(), train.matmul());
        // bf16_tensor: the shape carries the precision to the worker's backend, and the plan counts the weight copy
        return p;
    }

    /**
     * A backend move between two shapes (a batch-ramp step, a new stage): the device holds one backend's buffers at a
     * time (the old backend closes before the new one allocates), so its peak is the larger plan; the executor heap
     * holds the larger backend's host copies plus the state carried across on the host ({@code carriedBytes}:
     * parameters and this rank's moments; 0 when a ZeRO-1 slice changes with the model and the state comes from the
     * checkpoint instead).
     */
    public record Move(long step, Stage from, int fromBatch, Stage to, int toBatch, long deviceBytes, long heapBytes,
                       long carriedBytes) {

        public boolean fits(long deviceMemory) {
            return deviceBytes <= deviceMemory;
        }

        public String describe() {
            return String.format(Locale.ROOT, "move at step %d: %s x %d -> %s x %d sequences: device peak %s (one "
                            + "backend at a time), heap peak %s (%s carried on the host)", step, from.name(), fromBatch,
                    to.name(), toBatch, bytes(deviceBytes), bytes(heapBytes), bytes(carriedBytes));
        }
    }

    /** Every backend move of the run: each step where the stage or the per-worker batch changes. */
    public static List<Move> moves(TrainConfig cfg) {
        List<Move> out = new ArrayList<>();
        TrainSettings train = cfg.train();
        int shards = train.shardOptimizer() && train.workers() > 1 ? train.workers() : 1;
        for (int i = 0; i < cfg.stages().size(); i++) {
            Stage st = cfg.stages().get(i);
            Stage prev = i == 0 ? null : cfg.stages().get(i - 1);
            long k0 = st.firstStep();
            if (prev != null) {
                out.add(move(k0, prev, prev.batchAt(k0 - 1), st, st.batchAt(k0), train, shards));
            }
            int b = st.batchAt(k0);
            // the ramp changes the batch at a few steps of its first rampSteps
            for (long k = k0 + 1; k < Math.min(st.endStep(), k0 + st.rampSteps() + 1); k++) {
                int nb = st.batchAt(k);
                if (nb != b) {
                    out.add(move(k, st, b, st, nb, train, shards));
                    b = nb;
                }
            }
        }
        return out;
    }

    private static Move move(long step, Stage from, int fromBatch, Stage to, int toBatch, TrainSettings train,
                             int shards) {
        MemoryPlan a = memory(from, fromBatch, train), b = memory(to, toBatch, train);
        long pa = new ParamLayout(from.model()).totalSize(), pb = new ParamLayout(to.model()).totalSize();
        boolean fromCheckpoint = shards > 1 && pa != pb;
        long carried = fromCheckpoint ? 0 : 4 * (pa + 2 * ((pa + shards - 1) / shards));
        return new Move(step, from, fromBatch, to, toBatch, Math.max(a.deviceBytes(), b.deviceBytes()),
                Math.max(a.heapBytes(), b.heapBytes()) + carried, carried);
    }

    /** The plan of each stage at its largest batch. */
    public static List<MemoryPlan> memoryPlans(TrainConfig cfg) {
        List<MemoryPlan> out = new ArrayList<>();
        for (Stage s : cfg.stages()) {
            out.add(memory(s, Math.max(s.batchPerWorker(), s.batchStart()), cfg.train()));
        }
        return out;
    }

    static String bytes(double b) {
        return b >= (1L << 30) ? String.format(Locale.ROOT, "%.1f GiB", b / (1L << 30))
                : String.format(Locale.ROOT, "%.1f MiB", b / (1L << 20));
    }

    /** What changes when {@code next} begins after {@code prev} (null at the start of the run). */
    public static String transition(Stage prev, Stage next) {
        if (prev == null) {
            return "stage " + next.name() + " begins at step " + next.firstStep();
        }
        List<String> changes = new ArrayList<>();
        LoopConfig a = prev.model(), b = next.model();
        if (prev.seqLen() != next.seqLen()) {
            changes.add("sequence length " + prev.seqLen() + " -> " + next.seqLen() + " (the reader repacks the stream)");
        }
        if (a.steps() != b.steps()) {
            changes.add("recurrent steps " + a.steps() + " -> " + b.steps());
        }
        if (a.beta() != b.beta()) {
            changes.add("beta " + num(a.beta()) + " -> " + num(b.beta()));
        }
        if (a.ropeBase() != b.ropeBase()) {
            changes.add("RoPE base " + num(a.ropeBase()) + " -> " + num(b.ropeBase()));
        }
        if (a.layers() != b.layers()) {
            changes.add("layers " + a.layers() + " -> " + b.layers() + " (upcycled by "
                    + (next.upcycle() == null ? "tile" : next.upcycle().mode()) + ", optimizer moments duplicated with them)");
        }
        if (prev.batchAt(prev.endStep() - 1) != next.batchAt(next.firstStep())) {
            changes.add("batch " + prev.batchAt(prev.endStep() - 1) + " -> " + batch(next) + " sequences per worker");
        }
        if (!prev.lr().equals(next.lr())) {
            changes.add("lr " + lr(prev.lr()) + " -> " + lr(next.lr()));
        }
        if (!mixture(prev.mixture()).equals(mixture(next.mixture()))) {
            changes.add("mixture " + mixture(prev.mixture()) + " -> " + mixture(next.mixture()));
        }
        if (prev.stageTwo() != next.stageTwo()) {
            changes.add(next.stageTwo() ? "objective Stage II: LM frozen, only the exit gate trains"
                    : "objective back to Stage I");
        }
        return "stage " + next.name() + " begins at step " + next.firstStep() + ": "
                + (changes.isEmpty() ? "no change" : String.join("; ", changes));
    }

    static String batch(Stage s) {
        return s.batchStart() == s.batchPerWorker() || s.rampSteps() == 0 ? Integer.toString(s.batchPerWorker())
                : s.batchStart() + "->" + s.batchPerWorker() + " over " + s.rampSteps() + " steps";
    }

    /** The stage's batch over all {@code w} workers, in sequences and tokens (its ramp's ends when it ramps). */
    static String global(Stage s, int w) {
        int a = s.batchAt(s.firstStep()), b = s.batchPerWorker();
        return a == b ? String.format(Locale.ROOT, "global %d sequences, %s tokens", (long) w * b,
                human((long) w * b * s.seqLen()))
                : String.format(Locale.ROOT, "global %d->%d sequences, %s->%s tokens", (long) w * a, (long) w * b,
                human((long) w * a * s.seqLen()), human((long) w * b * s.seqLen()));
    }

    static String lr(Stage.Lr l) {
        return String.format(Locale.ROOT, "%s %.3g%s%s", l.schedule(), l.peak(),
                l.warmupSteps() > 0 ? " after " + l.warmupSteps() + " warm-up steps" : "",
                l.schedule().equals("constant") ? "" : String.format(Locale.ROOT, " to %.3g", l.peak() * l.minRatio()));
    }

    static String mixture(Map<String, Double> m) {
        double sum = m.values().stream().mapToDouble(Double::doubleValue).sum();
        StringBuilder b = new StringBuilder("{");
        new java.util.TreeMap<>(m).forEach((k, v) -> b.append(b.length() > 1 ? ", " : "")
                .append(k).append(String.format(Locale.ROOT, " %.1f%%", 100 * v / sum)));
        return b.append('}').toString();
    }

    static String sources(TrainConfig cfg) {
        StringBuilder b = new StringBuilder();
        for (TrainConfig.Source s : cfg.sources()) {
            b.append(b.length() > 0 ? ", " : "").append(s.name()).append('=')
                    .append(s.synthetic() ? "synthetic(" + s.syntheticTokens() + " tokens)" : s.manifest());
        }
        return b.toString();
    }

    static String num(double x) {
        return x == Math.rint(x) && Math.abs(x) < 1e15 ? Long.toString((long) x) : Double.toString(x);
    }

    static String human(long n) {
        if (n >= 1_000_000_000_000L) {
            return String.format(Locale.ROOT, "%.2fT", n / 1e12);
        }
        if (n >= 1_000_000_000L) {
            return String.format(Locale.ROOT, "%.2fB", n / 1e9);
        }
        if (n >= 1_000_000L) {
            return String.format(Locale.ROOT, "%.2fM", n / 1e6);
        }
        return Long.toString(n);
    }
}
