package io.ouro.orchestrator.config;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.comm.WireDtype;
import io.ouro.worker.model.MatmulPrecision;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * A training run as its YAML file describes it (see {@code pipeline-configs/README.md}), validated:
 * every error names the file, the field and what was expected, and unknown fields are errors.
 * A run is a list of stages (the curriculum); a file without {@code stages} is one stage named
 * {@code main} taken from the {@code train} section.
 */
public record TrainConfig(String file, Run run, LoopConfig model, List<Source> sources, TrainSettings train,
                          List<Stage> stages, String initFrom) implements Serializable {

    public record Run(String name, long seed, String out) implements Serializable {
    }

    /** A named token source: shards from the tokenization job (a manifest) or the built-in synthetic corpus. */
    public record Source(String name, String manifest, long syntheticTokens, long syntheticSeed) implements Serializable {
        public boolean synthetic() {
            return manifest == null;
        }
    }

    /** This config with checkpoints every {@code every} steps. */
    public TrainConfig withCheckpointEvery(long every) {
        return new TrainConfig(file, run, model, sources, train.withCheckpointEvery(every), stages, initFrom);
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
     * when it is not fp32: it changes the gradients; so does the gradient wire ({@code exchange_dtype}), which rounds
     * the summed gradients to bfloat16.
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
        if (train.exchangeDtype() != WireDtype.FP32) {
            // bfloat16 on the wire rounds every summed gradient (fp32 stays out of the key: earlier runs keep their hash)
            key.append("|exchange ").append(train.exchangeDtype().yamlName());
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
        return parse(path.toString(), ConfigParser.read(path.toUri().toString(), path.toString(), new org.apache.hadoop.conf.Configuration()));
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
        return ConfigParser.read(uri, uri, conf);
    }


    /** The config {@code yaml} describes; {@code file} names it in errors. */
    public static TrainConfig parse(String file, String yaml) {
        return ConfigParser.parse(file, yaml);
    }

    /**
     * The config {@code yaml} describes with {@code train.workers} set to {@code workers}: parsed again, so that
     * everything that depends on W is recomputed from the file (a stage's steps when it gives tokens, the ZeRO-1 moment
     * slice of {@code shard_optimizer}).
     */
    public static TrainConfig parseWithWorkers(String file, String yaml, int workers) {
        return ConfigParser.parseWithWorkers(file, yaml, workers);
    }
}
