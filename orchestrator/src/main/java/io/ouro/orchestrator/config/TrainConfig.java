package io.ouro.orchestrator.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.ouro.worker.backend.MemoryPlan;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.DeviceSpec;

import java.io.IOException;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A training run as its YAML file describes it (see {@code pipeline-configs/README.md}), validated:
 * every error names the file, the field and what was expected, and unknown fields are errors.
 * A run is a list of stages (the curriculum); a file without {@code stages} is one stage named
 * {@code main} taken from the {@code train} section.
 */
public record TrainConfig(String file, Run run, LoopConfig model, List<Source> sources, Train train,
                          List<Stage> stages, String initFrom) implements Serializable {

    public record Run(String name, long seed, String out) implements Serializable {
    }

    /** A named token source: shards from the tokenization job (a manifest) or the built-in synthetic corpus. */
    public record Source(String name, String manifest, long syntheticTokens, long syntheticSeed) implements Serializable {
        public boolean synthetic() {
            return manifest == null;
        }
    }

    /** Settings of the whole run (not per stage). */
    public record Train(int workers, String device, int segmentSteps, double clip, double peakGflops, int timeoutSeconds,
                        long checkpointEvery, int keepCheckpoints, Recovery recovery, long injectFailureAtStep,
                        Spike spike, long injectNonFiniteAtStep, Validation validation, double deviceMemoryGib,
                        long maxBufferMib, boolean shardOptimizer, int ringConnections, int bucketMib,
                        boolean bf16Stash, MatmulPrecision matmul)
            implements Serializable {

        Train withCheckpointEvery(long every) {
            return new Train(workers, device, segmentSteps, clip, peakGflops, timeoutSeconds, every, keepCheckpoints,
                    recovery, injectFailureAtStep, spike, injectNonFiniteAtStep, validation, deviceMemoryGib,
                    maxBufferMib, shardOptimizer, ringConnections, bucketMib, bf16Stash, matmul);
        }

        /** The largest gradient bucket of the exchange, in floats. */
        public int bucketFloats() {
            return (int) Math.min(Integer.MAX_VALUE - 8, (long) bucketMib * (1L << 20) / 4);
        }

        /** The device memory the plan sizes each worker for, in bytes. */
        public long deviceBytes() {
            return (long) (deviceMemoryGib * (1L << 30));
        }

        /** The largest device buffer in floats (0: the device's and a Java array's limit). */
        public long bufferLimitFloats() {
            return maxBufferMib * (1L << 20) / 4;
        }
    }

    /**
     * Validation: a deterministic held-out split of documents ({@code holdout} of them, chosen by a hash of
     * the seed and the document's index), evaluated every {@code everySteps} steps on {@code batches}
     * global batches; {@code everySteps} 0 turns it off.
     */
    public record Validation(long everySteps, int batches, double holdout) implements Serializable {
    }

    /**
     * Spike skipping: an update is skipped when loss or gradient norm exceeds mean + sigma sd of the window;
     * after {@code maxConsecutive} skips in a row the next step is accepted as a new level.
     */
    public record Spike(int window, int minHistory, double sigma, int maxConsecutive) implements Serializable {
    }

    /**
     * How a run rides out lost nodes: at most {@code maxFailures} failed segments per {@code windowSteps} steps of
     * committed progress (a sliding window: progress renews the budget), a back-off before each retry that doubles
     * from {@code backoffSeconds} up to {@code backoffMaxSeconds} and starts again after progress, and checkpoints
     * every {@code checkpointEveryMinutes} of wall time as well as every {@code checkpoint_every} steps (0: off).
     */
    public record Recovery(int maxFailures, long windowSteps, double backoffSeconds, double backoffMaxSeconds,
                           double checkpointEveryMinutes) implements Serializable {
    }

    /** This config with checkpoints every {@code every} steps. */
    public TrainConfig withCheckpointEvery(long every) {
        return new TrainConfig(file, run, model, sources, train.withCheckpointEvery(every), stages, initFrom);
    }

    /** Learning rate of one stage: linear warm-up to {@code peak}, then constant, cosine or WSD to the floor. */
    public record Lr(double peak, long warmupSteps, String schedule, double minRatio, double decayFraction)
            implements Serializable {

        public double at(long s, long steps) {
            if (s < warmupSteps) {
                return peak * (s + 1) / warmupSteps;
            }
            double floor = peak * minRatio;
            switch (schedule) {
                case "constant":
                    return peak;
                case "wsd": {
                    long decay = Math.max(1, Math.round(steps * decayFraction));
                    long start = steps - decay;
                    if (s < start) {
                        return peak;
                    }
                    return peak + (floor - peak) * Math.min(1.0, (double) (s - start + 1) / decay);
                }
                default: { // cosine
                    double t = steps <= warmupSteps ? 1 : (double) (s - warmupSteps) / (steps - warmupSteps);
                    return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, t)));
                }
            }
        }
    }

    /** Duplicate the layers at the start of a stage: tile [1..L, 1..L] or interleave [1,1,2,2,...]. */
    public record Upcycle(int layers, String mode) implements Serializable {
    }

    /**
     * One stage of the curriculum: global steps {@code [firstStep, firstStep + steps)}, its sequence length,
     * per-worker batch (optionally ramped from {@code batchStart} over {@code rampSteps}), the model as it
     * runs in this stage (recurrent steps, beta, RoPE base, layers), learning rate, data mixture, objective.
     */
    public record Stage(String name, int index, long firstStep, long steps, int seqLen, int batchPerWorker,
                        int batchStart, long rampSteps, LoopConfig model, Lr lr, Map<String, Double> mixture,
                        String onExhausted, boolean stageTwo, Upcycle upcycle, int microBatch, Recompute recompute,
                        int recomputeChunk, io.ouro.worker.data.Sampler.Layout layout) implements Serializable {

        public long endStep() {
            return firstStep + steps;
        }

        /**
         * How a worker runs {@code batch} sequences of this stage: the config's micro_batch and recompute where set,
         * otherwise the plan's choice for the device memory (one rule for the driver's plan and every executor).
         */
        public MemoryPlan plan(int batch, Train train) {
            int shards = train.shardOptimizer() ? train.workers() : 1;
            long exchange = train.workers() > 1 ? train.bucketFloats() : 0;
            MemoryPlan p = MemoryPlan.choose(model, batch, seqLen, microBatch, recompute, recomputeChunk,
                    train.bufferLimitFloats(), train.deviceBytes(), OpenClModel.MAX_BUFFER_FLOATS, shards, exchange,
                    train.bf16Stash());
            // the products' precision changes no buffer: the chosen shape, carrying it to the worker's backend
            return train.matmul() == MatmulPrecision.FP32 ? p
                    : MemoryPlan.of(model, p.shape().withMatmul(train.matmul()), false, OpenClModel.MAX_BUFFER_FLOATS,
                            shards, exchange);
        }

        /** Sequences per worker at global step {@code s} (the batch ramp, in whole sequences). */
        public int batchAt(long s) {
            if (rampSteps <= 0 || batchStart == batchPerWorker) {
                return batchPerWorker;
            }
            double f = Math.min(1.0, (double) (s - firstStep) / rampSteps);
            return (int) Math.round(batchStart + (batchPerWorker - batchStart) * f);
        }

        public double lrAt(long s) {
            return lr.at(s - firstStep, steps);
        }
    }

    /** Total steps of all stages. */
    public long totalSteps() {
        Stage last = stages.get(stages.size() - 1);
        return last.endStep();
    }

    public Stage stageAt(long step) {
        for (Stage s : stages) {
            if (step < s.endStep()) {
                return s;
            }
        }
        return stages.get(stages.size() - 1);
    }

    /** The end of the segment starting at {@code first}: never across a checkpoint step, a stage end or a ramp change. */
    public long segmentEnd(long first) {
        Stage st = stageAt(first);
        long end = Math.min(st.endStep(), first + train.segmentSteps());
        if (train.checkpointEvery() > 0) {
            end = Math.min(end, (first / train.checkpointEvery() + 1) * train.checkpointEvery());
        }
        long v = train.validation().everySteps();
        if (v > 0) {
            end = Math.min(end, (first / v + 1) * v);
        }
        int b = st.batchAt(first);
        for (long s = first + 1; s < end; s++) {
            if (st.batchAt(s) != b) {
                return s;
            }
        }
        return end;
    }

    /** Whether the validation split is evaluated after step {@code end - 1}. */
    public boolean validateAt(long end) {
        long v = train.validation().everySteps();
        return v > 0 && (end % v == 0 || end == totalSteps());
    }

    /** Whether a checkpoint is written after step {@code end - 1}: every N steps and at each stage end. */
    public boolean checkpointAt(long end) {
        if (train.checkpointEvery() <= 0) {
            return false;
        }
        if (end % train.checkpointEvery() == 0 || end == totalSteps()) {
            return true;
        }
        for (Stage s : stages) {
            if (s.endStep() == end) {
                return true;
            }
        }
        return false;
    }

    /**
     * What a checkpoint must agree on to be resumed by this run: the model, the stages, the data sources
     * and the seed (everything that decides the weights at a given step). A function of the content alone,
     * the same in every JVM: each field is written in a fixed order, the mixture sorted by source name. The
     * global batch of every step counts, not how it is split over workers, so a run may resume with another
     * W when W times the batch per worker stays the same. For the same reason the micro-batch, the
     * recomputation and the device sizes are left out: they change memory and the order of float sums, not
     * what is trained. The precision of the stash and of the products ({@code stash_dtype}, {@code matmul}) counts
     * when it is not fp32: it changes the gradients.
     */
    public String hash() {
        StringBuilder key = new StringBuilder("ouro-run-identity-2|model ").append(model)
                .append("|seed ").append(run.seed()).append("|clip ").append(train.clip());
        for (Source s : sources) {
            key.append("|source ").append(s.name()).append(' ').append(s.manifest()).append(' ')
                    .append(s.syntheticTokens()).append(' ').append(s.syntheticSeed());
        }
        for (Stage s : stages) {
            key.append("|stage ").append(s.name()).append(" index ").append(s.index()).append(" steps ")
                    .append(s.firstStep()).append('+').append(s.steps()).append(" seq ").append(s.seqLen())
                    .append(" model ").append(s.model()).append(" lr ").append(s.lr()).append(" mixture ")
                    .append(new java.util.TreeMap<>(s.mixture())).append(" exhausted ").append(s.onExhausted())
                    .append(" stage2 ").append(s.stageTwo()).append(" upcycle ").append(s.upcycle())
                    .append(s.layout().equals(io.ouro.worker.data.Sampler.Layout.PACKED) ? "" : " layout " + s.layout())
                    .append(" global batch");
            long prev = -1;
            for (long k = s.firstStep(); k < s.endStep(); k++) {
                long g = (long) train.workers() * s.batchAt(k);
                if (g != prev) {
                    key.append(' ').append(k).append(':').append(g);
                    prev = g;
                }
                if (k >= s.firstStep() + s.rampSteps()) {
                    break; // past the ramp the batch no longer changes
                }
            }
        }
        if (!initFrom.isEmpty()) {
            key.append("|init_from ").append(initFrom);
        }
        if (train.bf16Stash()) {
            // unlike the micro-batch or the recomputation, it changes the gradients by more than the order of sums
            key.append("|stash bf16");
        }
        if (train.matmul() != MatmulPrecision.FP32) {
            // bfloat16 operands change every product (fp32 stays out of the key: earlier runs keep their hash)
            key.append("|matmul ").append(train.matmul().yamlName());
        }
        try {
            byte[] d = java.security.MessageDigest.getInstance("SHA-256")
                    .digest(key.toString().getBytes(StandardCharsets.UTF_8));
            return java.util.HexFormat.of().formatHex(d, 0, 12);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The config at a local path (read through Hadoop's local file system, as {@link #load(String)} reads any URI). */
    public static TrainConfig load(Path path) {
        return parse(path.toString(), read(path.toUri().toString(), path.toString(), new org.apache.hadoop.conf.Configuration()));
    }

    /**
     * The config at {@code uri}: a path or any URI a Hadoop file system serves ({@code hdfs://}, {@code file://}, object
     * stores), as the rest of the product opens its inputs; {@code conf} carries the cluster's settings.
     */
    public static TrainConfig load(String uri, org.apache.hadoop.conf.Configuration conf) {
        return parse(uri, read(uri, conf));
    }

    /** {@link #load(String, org.apache.hadoop.conf.Configuration)} with the Hadoop settings found on the class path. */
    public static TrainConfig load(String uri) {
        return load(uri, new org.apache.hadoop.conf.Configuration());
    }

    /** The text of the config file at {@code uri} (a path or a Hadoop file system URI). */
    public static String read(String uri, org.apache.hadoop.conf.Configuration conf) {
        return read(uri, uri, conf);
    }

    private static String read(String uri, String label, org.apache.hadoop.conf.Configuration conf) {
        try {
            org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(uri);
            try (java.io.InputStream in = p.getFileSystem(conf).open(p)) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
        } catch (IOException | IllegalArgumentException e) {
            throw new ConfigException(label + ": cannot read: " + e.getMessage(), e);
        }
    }

    public static TrainConfig parse(String file, String yaml) {
        JsonNode root;
        try {
            root = new ObjectMapper(new YAMLFactory()).readTree(yaml);
        } catch (IOException e) {
            throw new ConfigException(file + ": not valid YAML: " + e.getMessage(), e);
        }
        if (root == null || root.isMissingNode() || root.isNull()) {
            throw new ConfigException(file + ": empty config");
        }
        Node top = new Node(file, "", root);

        Node r = top.child("run");
        Run run = new Run(r.string("name", "ouro"), r.integer("seed", 1L, Long.MIN_VALUE, Long.MAX_VALUE),
                r.string("out", ""));
        r.noOthers();

        Node modelNode = top.child("model");
        String initFrom = modelNode.string("init_from", "");
        LoopConfig model = model(modelNode, initFrom.isEmpty() ? null : initFromConfig(modelNode, initFrom));
        List<Source> sources = sources(top.child("data"), run);

        Node t = top.child("train");
        int workers = (int) t.integer("workers", 1L, 1, 4096);
        String device = t.string("device", "java");
        try {
            DeviceSpec.parse(device);
        } catch (IllegalArgumentException e) {
            throw t.error("device", e.getMessage().replaceFirst("^device: ", ""));
        }
        boolean legacy = !top.has("stages");
        // a file without stages describes its one stage in the train section
        Map<String, JsonNode> stageFields = new LinkedHashMap<>();
        if (legacy) {
            for (String k : List.of("batch_per_worker", "seq_len", "steps", "lr", "warmup_steps", "schedule",
                    "min_lr_ratio", "beta", "micro_batch", "recompute", "recompute_chunk")) {
                if (t.has(k)) {
                    stageFields.put(k, root.get("train").get(k));
                }
                t.string(k, "");
            }
        }
        int segment = (int) t.integer("segment_steps", 50L, 1, Integer.MAX_VALUE);
        double clip = t.number("clip", 1.0, 0, 1e9);
        double peak = t.number("peak_gflops", 0.0, 0, 1e9);
        int timeout = (int) t.integer("timeout_s", 300L, 1, 86_400);
        long every = t.integer("checkpoint_every", run.out().isEmpty() ? 0L : (long) segment, 0, Long.MAX_VALUE / 4);
        if (every > 0 && run.out().isEmpty()) {
            throw t.error("checkpoint_every", "checkpoints need run.out (a directory URI) or --out");
        }
        int keep = (int) t.integer("keep_checkpoints", 3L, 1, 10_000);
        Recovery recovery = recovery(t, every);
        long inject = t.integer("inject_failure_at_step", -1L, -1, Long.MAX_VALUE / 4);
        long injectNan = t.integer("inject_nonfinite_at_step", -1L, -1, Long.MAX_VALUE / 4);
        Node sp = t.child("spike");
        Spike spike = new Spike((int) sp.integer("window", 50L, 1, 100_000), (int) sp.integer("min_history", 20L, 1, 100_000),
                sp.number("sigma", 6.0, 0, 1e6), (int) sp.integer("max_consecutive", 10L, 0, 1_000_000));
        sp.noOthers();
        Node va = t.child("validation");
        Validation validation = new Validation(va.integer("every_steps", 0L, 0, Long.MAX_VALUE / 4),
                (int) va.integer("batches", 4L, 1, 1_000_000), va.number("holdout", 0.02, 0, 0.5));
        va.noOthers();
        double memory = t.number("device_memory_gib", 141.0, 0.001, 1e6);
        long maxBuffer = t.integer("max_buffer_mib", 0L, 0, OpenClModel.MAX_BUFFER_FLOATS * 4 / (1 << 20));
        boolean shard = t.bool("shard_optimizer", false);
        int connections = (int) t.integer("ring_connections", 2L, 1, 64);
        int bucket = (int) t.integer("bucket_mib", 32L, 1, 8191);
        String stashDtype = t.string("stash_dtype", "fp32");
        if (!stashDtype.equals("fp32") && !stashDtype.equals("bf16")) {
            throw t.error("stash_dtype", "expected fp32 or bf16, got '" + stashDtype + "'");
        }
        String matmulName = t.string("matmul", "fp32");
        MatmulPrecision matmul;
        try {
            matmul = MatmulPrecision.parse(matmulName);
        } catch (IllegalArgumentException e) {
            throw t.error("matmul", "expected fp32 or bf16_tensor, got '" + matmulName + "'");
        }
        t.noOthers();
        Train train = new Train(workers, device, segment, clip, peak, timeout, every, keep, recovery, inject, spike,
                injectNan, validation, memory, maxBuffer, shard, connections, bucket, stashDtype.equals("bf16"),
                matmul);

        List<Stage> stages = new ArrayList<>();
        if (legacy) {
            ObjectMapper m = new ObjectMapper();
            var node = m.createObjectNode();
            node.put("name", "main");
            stageFields.forEach((k, v) -> {
                switch (k) {
                    case "lr" -> node.putObject("lr").set("peak", v);
                    case "warmup_steps" -> node.with("lr").set("warmup_steps", v);
                    case "schedule" -> node.with("lr").set("schedule", v);
                    case "min_lr_ratio" -> node.with("lr").set("min_ratio", v);
                    default -> node.set(k, v);
                }
            });
            stages.add(stage(new Node(file, "train", node), 0, 0, model, sources, train));
        } else {
            List<Node> list = top.list("stages");
            if (list.isEmpty()) {
                throw new ConfigException(file + ": stages: expected at least one stage");
            }
            long first = 0;
            LoopConfig current = model;
            for (int i = 0; i < list.size(); i++) {
                Stage s = stage(list.get(i), i, first, current, sources, train);
                for (Stage prev : stages) {
                    if (prev.name().equals(s.name())) {
                        throw new ConfigException(file + ": stages[" + i + "].name: '" + s.name() + "' is used twice");
                    }
                }
                stages.add(s);
                first = s.endStep();
                current = s.model();
            }
        }
        top.noOthers();
        return new TrainConfig(file, run, model, sources, train, List.copyOf(stages), initFrom);
    }

    /** {@code train.retry} and {@code train.checkpoint_every_minutes} (see {@link Recovery}). */
    static Recovery recovery(Node t, long checkpointEvery) {
        if (t.has("max_attempts")) {
            throw t.error("max_attempts", "replaced by train.retry: {max_failures: N, window_steps: K} (at most N failed"
                    + " segments per K committed steps, default 8 per 1000; progress renews the budget) and"
                    + " {backoff_s, backoff_max_s} (the wait before a retry, default 10 doubling to 600)");
        }
        Node r = t.child("retry");
        int failures = (int) r.integer("max_failures", 8L, 0, 1_000_000);
        long window = r.integer("window_steps", 1000L, 1, Long.MAX_VALUE / 4);
        double base = r.number("backoff_s", 10.0, 0, 86_400);
        double max = r.number("backoff_max_s", Math.max(base, 600.0), base, 86_400);
        r.noOthers();
        double minutes = t.number("checkpoint_every_minutes", 0.0, 0, 1e7);
        if (minutes > 0 && checkpointEvery == 0) {
            throw t.error("checkpoint_every_minutes", "checkpoints need run.out (a directory URI) or --out, and"
                    + " checkpoint_every > 0");
        }
        return new Recovery(failures, window, base, max, minutes);
    }

    static List<Source> sources(Node d, Run run) {
        List<Source> out = new ArrayList<>();
        if (d.has("sources")) {
            for (Node s : d.list("sources")) {
                out.add(source(s, s.string("name", null), run));
                s.noOthers();
            }
            if (out.isEmpty()) {
                throw d.error("sources", "expected at least one source");
            }
        } else {
            out.add(source(d, "main", run));
        }
        d.noOthers();
        for (int i = 0; i < out.size(); i++) {
            for (int j = 0; j < i; j++) {
                if (out.get(i).name().equals(out.get(j).name())) {
                    throw d.error("sources", "source name '" + out.get(i).name() + "' is used twice");
                }
            }
        }
        return List.copyOf(out);
    }

    static Source source(Node d, String name, Run run) {
        String manifest = d.has("manifest") ? d.string("manifest", null) : null;
        if (d.has("synthetic")) {
            if (manifest != null) {
                throw d.error("synthetic", "give either manifest or synthetic, not both");
            }
            Node s = d.child("synthetic");
            long tokens = s.integer("tokens", 200_000L, 2, Integer.MAX_VALUE);
            long seed = s.integer("seed", run.seed() + name.hashCode(), Long.MIN_VALUE, Long.MAX_VALUE);
            s.noOthers();
            return new Source(name, null, tokens, seed);
        }
        if (manifest == null) {
            throw d.error("manifest", "required: manifest (shards from `ouro tokenize`) or synthetic");
        }
        return new Source(name, manifest, 0, 0);
    }

    static Stage stage(Node n, int index, long first, LoopConfig prev, List<Source> sources, Train train) {
        String name = n.string("name", "stage" + index);
        int seqLen = (int) n.integer("seq_len", null, 1, 1 << 20);
        int batch = (int) n.integer("batch_per_worker", null, 1, 1 << 20);
        int batchStart = (int) n.integer("batch_start", (long) batch, 1, 1 << 20);
        long ramp = n.integer("ramp_steps", 0L, 0, Long.MAX_VALUE / 4);
        long steps;
        if (n.has("tokens")) {
            if (n.has("steps")) {
                throw n.error("tokens", "give either steps or tokens, not both");
            }
            long tokens = n.integer("tokens", null, 1, Long.MAX_VALUE / 4);
            steps = Math.max(1, tokens / ((long) batch * train.workers() * seqLen));
        } else {
            steps = n.integer("steps", null, 1, Long.MAX_VALUE / 4);
        }
        int t = (int) n.integer("recurrent_steps", (long) prev.steps(), 1, 64);
        double beta = n.number("beta", prev.beta(), 0, 100);
        double rope = n.number("rope_base", prev.ropeBase(), 1, 1e12);
        Upcycle up = null;
        int layers = prev.layers();
        if (n.has("upcycle")) {
            Node u = n.child("upcycle");
            int l = (int) u.integer("layers", null, 1, 4096);
            String mode = u.string("mode", "tile");
            if (!mode.equals("tile") && !mode.equals("interleave")) {
                throw u.error("mode", "expected tile or interleave, got '" + mode + "'");
            }
            if (l % prev.layers() != 0 || l <= prev.layers()) {
                throw u.error("layers", "expected a multiple of the current " + prev.layers() + " layers, larger, got " + l);
            }
            u.noOthers();
            up = new Upcycle(l, mode);
            layers = l;
        }
        Node lrn = n.child("lr");
        double peak = lrn.number("peak", 3e-4, 0, 10);
        long warm = lrn.integer("warmup_steps", 0L, 0, Long.MAX_VALUE / 4);
        String sched = lrn.string("schedule", "constant");
        if (!List.of("constant", "cosine", "wsd").contains(sched)) {
            throw lrn.error("schedule", "expected constant, cosine or wsd, got '" + sched + "'");
        }
        double minRatio = lrn.number("min_ratio", 0.1, 0, 1);
        double decay = lrn.number("decay_fraction", 0.2, 0, 1);
        lrn.noOthers();
        Map<String, Double> mixture = new LinkedHashMap<>();
        if (n.has("mixture")) {
            Node mx = n.child("mixture");
            for (Source s : sources) {
                if (mx.has(s.name())) {
                    mixture.put(s.name(), mx.number(s.name(), null, 0, 1e9));
                }
            }
            mx.noOthers();
        } else {
            for (Source s : sources) {
                mixture.put(s.name(), 1.0);
            }
        }
        double sum = mixture.values().stream().mapToDouble(Double::doubleValue).sum();
        if (!(sum > 0)) {
            throw n.error("mixture", "expected positive weights for at least one source");
        }
        String exhausted = n.string("on_exhausted", "wrap");
        if (!exhausted.equals("wrap") && !exhausted.equals("stop")) {
            throw n.error("on_exhausted", "expected wrap or stop, got '" + exhausted + "'");
        }
        String sampling = n.string("sampling", "packed");
        if (!sampling.equals("packed") && !sampling.equals("aligned")) {
            throw n.error("sampling", "expected packed or aligned, got '" + sampling + "'");
        }
        String loss = n.string("loss", "all");
        if (!loss.equals("all") && !loss.equals("answer")) {
            throw n.error("loss", "expected all or answer, got '" + loss + "'");
        }
        if (loss.equals("answer") && !sampling.equals("aligned")) {
            throw n.error("loss", "answer (the loss on each document's last token) needs sampling: aligned");
        }
        int micro = (int) n.integer("micro_batch", 0L, 0, batch);
        Recompute recompute = null;
        if (n.has("recompute")) {
            String r = n.string("recompute", "");
            try {
                recompute = Recompute.parse(r);
            } catch (IllegalArgumentException e) {
                throw n.error("recompute", "expected none, layer or loop_step, got '" + r + "'");
            }
        }
        int chunk = (int) n.integer("recompute_chunk", 4096L, 0, 1 << 30);
        String objective = n.string("objective", "stage1");
        if (!objective.equals("stage1") && !objective.equals("stage2")) {
            throw n.error("objective", "expected stage1 or stage2, got '" + objective + "'");
        }
        n.noOthers();
        LoopConfig m;
        try {
            m = new LoopConfig(prev.vocab(), prev.hidden(), layers, prev.heads(), prev.ffn(), t, rope, prev.normEps(),
                    beta, prev.initStd(), prev.seed());
        } catch (IllegalArgumentException e) {
            throw n.error("recurrent_steps", e.getMessage());
        }
        return new Stage(name, index, first, steps, seqLen, batch, batchStart, ramp, m,
                new Lr(peak, warm, sched, minRatio, decay), Map.copyOf(mixture), exhausted, objective.equals("stage2"), up,
                micro, recompute, chunk,
                new io.ouro.worker.data.Sampler.Layout(sampling.equals("aligned"), loss.equals("answer")));
    }

    /**
     * The model of an HF Ouro directory that {@code model.init_from} names (read here, on the driver, so that a wrong
     * directory fails before any executor starts).
     */
    static LoopConfig initFromConfig(Node m, String dir) {
        if (m.has("preset")) {
            throw m.error("preset", "init_from takes the model from " + dir + "/config.json; leave preset out");
        }
        io.ouro.orchestrator.fs.HadoopModelDir d;
        try {
            d = new io.ouro.orchestrator.fs.HadoopModelDir(dir, new org.apache.hadoop.conf.Configuration());
            try (var in = d.open(io.ouro.worker.hf.HfModelDir.CONFIG)) {
                return io.ouro.worker.hf.HfConfig.parse(d.describe(io.ouro.worker.hf.HfModelDir.CONFIG),
                        in.readAllBytes(), new LoopConfig(512, 64, 2, 4, 176, 4, 10_000, 1e-6, 0.1, 0.02, 1));
            }
        } catch (IOException e) {
            throw m.error("init_from", "expected an HF Ouro model directory (" + e.getMessage() + ")");
        }
    }

    /**
     * The model section; with {@code init_from} its base is that directory's model, whose width, heads, FFN and vocab
     * the section may not change (layers may grow by a multiple: the weights are upcycled as a stage transition
     * does; recurrent_steps and rope_base may change freely).
     */
    static LoopConfig model(Node m, LoopConfig initFrom) {
        String preset = initFrom != null ? "init_from" : m.string("preset", "small");
        LoopConfig base;
        switch (preset) {
            case "init_from":
                base = initFrom;
                break;
            case "tiny":
                base = LoopConfig.tiny();
                break;
            case "small":
                base = new LoopConfig(512, 64, 2, 4, 176, 4, 10_000, 1e-6, 0.1, 0.02, 1);
                break;
            case "bench":
                base = LoopConfig.bench();
                break;
            case "ouro-1.4b":
                base = LoopConfig.ouro1_4B();
                break;
            case "ouro-2.6b":
                base = LoopConfig.ouro2_6B();
                break;
            default:
                throw m.error("preset", "expected tiny, small, bench, ouro-1.4b or ouro-2.6b, got '" + preset + "'");
        }
        int vocab = (int) m.integer("vocab", (long) base.vocab(), 2, Integer.MAX_VALUE);
        int hidden = (int) m.integer("hidden", (long) base.hidden(), 2, 1 << 16);
        int layers = (int) m.integer("layers", (long) base.layers(), 1, 1024);
        int heads = (int) m.integer("heads", (long) base.heads(), 1, 1024);
        int ffn = (int) m.integer("ffn", (long) base.ffn(), 1, 1 << 18);
        int steps = (int) m.integer("recurrent_steps", (long) base.steps(), 1, 64);
        double rope = m.number("rope_base", base.ropeBase(), 1, 1e12);
        double beta = m.number("beta", base.beta(), 0, 100);
        double initStd = m.number("init_std", base.initStd(), 1e-9, 10);
        long seed = m.integer("seed", base.seed(), Long.MIN_VALUE, Long.MAX_VALUE);
        m.noOthers();
        if (initFrom != null) {
            String[] names = {"vocab", "hidden", "heads", "ffn"};
            int[] got = {vocab, hidden, heads, ffn}, want = {initFrom.vocab(), initFrom.hidden(), initFrom.heads(), initFrom.ffn()};
            for (int i = 0; i < names.length; i++) {
                if (got[i] != want[i]) {
                    throw m.error(names[i], "init_from's model has " + want[i] + "; only layers (by a multiple),"
                            + " recurrent_steps and rope_base may differ, got " + got[i]);
                }
            }
            if (layers % initFrom.layers() != 0) {
                throw m.error("layers", "a multiple of init_from's " + initFrom.layers() + " layers (upcycling), got " + layers);
            }
        }
        try {
            return new LoopConfig(vocab, hidden, layers, heads, ffn, steps, rope, base.normEps(), beta, initStd, seed);
        } catch (IllegalArgumentException e) {
            String msg = e.getMessage().replaceFirst("^LoopConfig\\.", "");
            throw new ConfigException(m.file() + ": model." + msg.replaceFirst("^steps:", "recurrent_steps:"), e);
        }
    }

    // --- another worker count (ouro plan --workers) --------------------------------------------------------------

    /**
     * The config {@code yaml} describes with {@code train.workers} set to {@code workers}: parsed again, so that
     * everything that depends on W is recomputed from the file (a stage's steps when it gives tokens, the ZeRO-1 moment
     * slice of {@code shard_optimizer}).
     */
    public static TrainConfig parseWithWorkers(String file, String yaml, int workers) {
        ObjectMapper m = new ObjectMapper(new YAMLFactory());
        JsonNode root;
        try {
            root = m.readTree(yaml);
        } catch (IOException e) {
            throw new ConfigException(file + ": not valid YAML: " + e.getMessage(), e);
        }
        if (!(root instanceof com.fasterxml.jackson.databind.node.ObjectNode top)) {
            return parse(file, yaml); // parse names what is wrong
        }
        JsonNode train = top.get("train");
        if (train != null && !train.isObject()) {
            return parse(file, yaml);
        }
        top.withObject("/train").put("workers", workers);
        try {
            return parse(file, m.writeValueAsString(top));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
