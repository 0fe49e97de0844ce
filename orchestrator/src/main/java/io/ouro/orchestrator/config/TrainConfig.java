package io.ouro.orchestrator.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.opencl.DeviceSpec;

import java.io.IOException;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A training run as its YAML file describes it (see {@code pipeline-configs/README.md}), validated:
 * every error names the file, the field and what was expected, and unknown fields are errors.
 */
public record TrainConfig(String file, Run run, LoopConfig model, Data data, Train train) implements Serializable {

    public record Run(String name, long seed, String out) implements Serializable {
    }

    /** Either shards from the tokenization job (a manifest) or the built-in synthetic corpus. */
    public record Data(String manifest, long syntheticTokens, long syntheticSeed) implements Serializable {
        public boolean synthetic() {
            return manifest == null;
        }
    }

    public record Train(int workers, String device, int batchPerWorker, int seqLen, long steps, int segmentSteps,
                        double lr, long warmupSteps, String schedule, double minLrRatio, double clip, double beta,
                        double peakGflops, int timeoutSeconds, long checkpointEvery, int keepCheckpoints,
                        int maxAttempts, long injectFailureAtStep) implements Serializable {

        /** The end of the segment that starts at {@code first}: segments never cross a checkpoint step. */
        public long segmentEnd(long first) {
            long end = Math.min(steps, first + segmentSteps);
            if (checkpointEvery > 0) {
                end = Math.min(end, (first / checkpointEvery + 1) * checkpointEvery);
            }
            return end;
        }

        /** Whether a checkpoint is written after step {@code end - 1}. */
        public boolean checkpointAt(long end) {
            return checkpointEvery > 0 && (end % checkpointEvery == 0 || end == steps);
        }

        /** Sequences per global step, all workers together. */
        public int globalBatch() {
            return workers * batchPerWorker;
        }

        /** The learning rate of step {@code s}: linear warm-up, then constant or cosine to the floor. */
        public double lrAt(long s) {
            if (s < warmupSteps) {
                return lr * (s + 1) / warmupSteps;
            }
            if (schedule.equals("constant")) {
                return lr;
            }
            double t = steps <= warmupSteps ? 1 : (double) (s - warmupSteps) / (steps - warmupSteps);
            double floor = lr * minLrRatio;
            return floor + (lr - floor) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, t)));
        }
    }

    /**
     * What a checkpoint must agree on to be resumed by this run: the model, the data, the seed, the sequence
     * length and the global batch (the sampler's inputs).
     */
    public String hash() {
        String key = model + "|" + data + "|" + run.seed() + "|" + train.seqLen() + "|" + train.globalBatch();
        try {
            byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
            return java.util.HexFormat.of().formatHex(d, 0, 12);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    public static TrainConfig load(Path path) {
        String text;
        try {
            text = Files.readString(path, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ConfigException(path + ": cannot read: " + e.getMessage(), e);
        }
        return parse(path.toString(), text);
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

        LoopConfig model = model(top.child("model"));

        Node d = top.child("data");
        String manifest = d.has("manifest") ? d.string("manifest", null) : null;
        long synthTokens = 0, synthSeed = 0;
        if (d.has("synthetic")) {
            if (manifest != null) {
                throw d.error("synthetic", "give either data.manifest or data.synthetic, not both");
            }
            Node s = d.child("synthetic");
            synthTokens = s.integer("tokens", 200_000L, 2, Integer.MAX_VALUE);
            synthSeed = s.integer("seed", run.seed(), Long.MIN_VALUE, Long.MAX_VALUE);
            s.noOthers();
        } else if (manifest == null) {
            throw d.error("manifest", "required: data.manifest (shards from `ouro tokenize`) or data.synthetic");
        }
        d.noOthers();
        Data data = new Data(manifest, synthTokens, synthSeed);

        Node t = top.child("train");
        int workers = (int) t.integer("workers", 1L, 1, 4096);
        String device = t.string("device", "java");
        try {
            DeviceSpec.parse(device);
        } catch (IllegalArgumentException e) {
            throw t.error("device", e.getMessage().replaceFirst("^device: ", ""));
        }
        int batch = (int) t.integer("batch_per_worker", null, 1, 1 << 20);
        int seqLen = (int) t.integer("seq_len", null, 1, 1 << 20);
        long steps = t.integer("steps", null, 1, Long.MAX_VALUE / 4);
        int segment = (int) t.integer("segment_steps", Math.min(steps, 50L), 1, Integer.MAX_VALUE);
        double lr = t.number("lr", 3e-4, 0, 10);
        long warmup = t.integer("warmup_steps", 0L, 0, Long.MAX_VALUE / 4);
        String schedule = t.string("schedule", "cosine");
        if (!schedule.equals("constant") && !schedule.equals("cosine")) {
            throw t.error("schedule", "expected constant or cosine, got '" + schedule + "'");
        }
        double minLr = t.number("min_lr_ratio", 0.1, 0, 1);
        double clip = t.number("clip", 1.0, 0, 1e9);
        double beta = t.number("beta", model.beta(), 0, 100);
        double peak = t.number("peak_gflops", 0.0, 0, 1e9);
        int timeout = (int) t.integer("timeout_s", 300L, 1, 86_400);
        long every = t.integer("checkpoint_every", run.out().isEmpty() ? 0L : (long) segment, 0, Long.MAX_VALUE / 4);
        if (every > 0 && run.out().isEmpty()) {
            throw t.error("checkpoint_every", "checkpoints need run.out (a directory URI) or --out");
        }
        int keep = (int) t.integer("keep_checkpoints", 3L, 1, 10_000);
        int attempts = (int) t.integer("max_attempts", 3L, 1, 100);
        long inject = t.integer("inject_failure_at_step", -1L, -1, Long.MAX_VALUE / 4);
        t.noOthers();
        top.noOthers();
        Train train = new Train(workers, device, batch, seqLen, steps, segment, lr, warmup, schedule, minLr, clip,
                beta, peak, timeout, every, keep, attempts, inject);
        return new TrainConfig(file, run, model.withBeta(beta), data, train);
    }

    static LoopConfig model(Node m) {
        String preset = m.string("preset", "small");
        LoopConfig base;
        switch (preset) {
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
        double initStd = m.number("init_std", base.initStd(), 1e-9, 10);
        long seed = m.integer("seed", base.seed(), Long.MIN_VALUE, Long.MAX_VALUE);
        m.noOthers();
        try {
            return new LoopConfig(vocab, hidden, layers, heads, ffn, steps, rope, base.normEps(), base.beta(),
                    initStd, seed);
        } catch (IllegalArgumentException e) {
            String msg = e.getMessage().replaceFirst("^LoopConfig\\.", "");
            throw new ConfigException(m.file() + ": model." + msg.replaceFirst("^steps:", "recurrent_steps:"), e);
        }
    }
}
