package io.ouro.orchestrator.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.ouro.orchestrator.config.TrainConfig.Run;
import io.ouro.orchestrator.config.TrainConfig.Source;
import io.ouro.orchestrator.config.TrainSettings.Recovery;
import io.ouro.orchestrator.config.TrainSettings.Spike;
import io.ouro.orchestrator.config.TrainSettings.Validation;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.comm.ExchangeInterface;
import io.ouro.worker.comm.WireDtype;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.model.DeviceSpec;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a config file into a {@link TrainConfig}: the {@code run}, {@code model}, {@code data} and {@code train}
 * sections and the stages ({@link StageParser}), every error naming the file and the field.
 */
final class ConfigParser {

    private ConfigParser() {
    }

    static String read(String uri, String label, org.apache.hadoop.conf.Configuration conf) {
        try {
            org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(uri);
            try (java.io.InputStream in = p.getFileSystem(conf).open(p)) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
        } catch (IOException | IllegalArgumentException e) {
            throw new ConfigException(label + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** The config {@code yaml} describes; {@code file} names it in errors. */
    static TrainConfig parse(String file, String yaml) {
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
        LoopConfig model = ModelSection.model(modelNode, initFrom.isEmpty() ? null : ModelSection.initFromConfig(modelNode, initFrom));
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
            for (String k : List.of("batch_per_worker", "global_batch", "seq_len", "steps", "lr", "warmup_steps", "schedule",
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
        long maxBuffer = t.integer("max_buffer_mib", 0L, 0, 1L << 20); // the device's limit is the plan's check
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
        String exchangeName = t.string("exchange_dtype", "fp32");
        WireDtype exchange;
        try {
            exchange = WireDtype.parse(exchangeName);
        } catch (IllegalArgumentException e) {
            throw t.error("exchange_dtype", e.getMessage());
        }
        // the network the ring uses on each executor (an interface name or a subnet); blank: Spark's host
        String exchangeInterface = t.string("exchange_interface", "").trim();
        String badInterface = ExchangeInterface.malformed(exchangeInterface);
        if (badInterface != null) {
            throw t.error("exchange_interface", badInterface);
        }
        Node wd = t.child("watchdog");
        TrainSettings.Watchdog watchdog = new TrainSettings.Watchdog(wd.number("slack_s", 120.0, 0.1, 86_400),
                wd.number("first_step_s", 1800.0, 0.1, 7 * 86_400));
        wd.noOthers();
        TrainSettings.Inject faults = inject(t, run);
        t.noOthers();
        TrainSettings train = new TrainSettings(workers, device, segment, clip, peak, timeout, every, keep, recovery, inject, spike,
                injectNan, validation, memory, maxBuffer, shard, connections, bucket, stashDtype.equals("bf16"),
                matmul, exchange, exchangeInterface, watchdog, faults);

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
            stages.add(StageParser.parse(new Node(file, "train", node), 0, 0, model, sources, train));
        } else {
            List<Node> list = top.list("stages");
            if (list.isEmpty()) {
                throw new ConfigException(file + ": stages: expected at least one stage");
            }
            long first = 0;
            LoopConfig current = model;
            for (int i = 0; i < list.size(); i++) {
                Stage s = StageParser.parse(list.get(i), i, first, current, sources, train);
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
        TrainConfig cfg = new TrainConfig(file, run, model, sources, train, List.copyOf(stages), initFrom);
        checkInjectSteps(cfg);
        return cfg;
    }

    /**
     * {@code train.inject} (see {@link TrainSettings.Inject}): lists of steps, each a fault that fires once per run
     * output, so it needs {@code run.out} for its markers.
     */
    static TrainSettings.Inject inject(Node t, Run run) {
        Node in = t.child("inject");
        TrainSettings.Inject faults = new TrainSettings.Inject(steps(in, "task_failure_at_steps"),
                steps(in, "hang_at_steps"), steps(in, "checkpoint_write_failure_at_steps"));
        in.noOthers();
        if (faults.any() && run.out().isEmpty()) {
            throw t.error("inject", "injected faults fire once per run output and need run.out (or --out) for"
                    + " their markers");
        }
        return faults;
    }

    private static List<Long> steps(Node n, String key) {
        return n.integers(key, 0, Long.MAX_VALUE / 4);
    }

    /** Every injected fault's step must be one the run reaches, or it would silently never fire. */
    private static void checkInjectSteps(TrainConfig cfg) {
        TrainSettings.Inject in = cfg.train().inject();
        long total = cfg.totalSteps();
        for (var e : Map.of("task_failure_at_steps", in.taskFailureAtSteps(), "hang_at_steps", in.hangAtSteps())
                .entrySet()) {
            for (long s : e.getValue()) {
                if (s >= total) {
                    throw new ConfigException(cfg.file() + ": train.inject." + e.getKey() + ": step " + s
                            + " is past the run's last step " + (total - 1));
                }
            }
        }
        for (long s : in.checkpointWriteFailureAtSteps()) {
            if (s <= 0 || !cfg.checkpointAt(s)) {
                throw new ConfigException(cfg.file() + ": train.inject.checkpoint_write_failure_at_steps: step " + s
                        + " is not a checkpoint step (checkpoint_every " + cfg.train().checkpointEvery() + ", "
                        + total + " steps)");
            }
        }
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
        int spares = (int) t.integer("spare_executors", 0L, 0, 4096);
        return new Recovery(failures, window, base, max, minutes, spares);
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

    // --- another worker count (ouro plan --workers) --------------------------------------------------------------

    /**
     * The config {@code yaml} describes with {@code train.workers} set to {@code workers}: parsed again, so that
     * everything that depends on W is recomputed from the file (a stage's steps when it gives tokens, the ZeRO-1 moment
     * slice of {@code shard_optimizer}).
     */
    static TrainConfig parseWithWorkers(String file, String yaml, int workers) {
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
