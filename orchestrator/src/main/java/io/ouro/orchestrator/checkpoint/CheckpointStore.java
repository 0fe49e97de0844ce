package io.ouro.orchestrator.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.worker.model.OptimizerState;
import io.ouro.worker.model.ParamLayout;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.DigestInputStream;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Checkpoints under {@code <out>/checkpoints/} on any Hadoop FileSystem. One checkpoint is a directory
 * {@code step-%010d} holding {@code model.safetensors} (weights, HF Ouro names), {@code exp_avg.safetensors}
 * and {@code exp_avg_sq.safetensors} (AdamW's moments, same names) and {@code state.json} (step, optimizer
 * update count, config hash, SHA-256 of each file). It is written under a temporary name and renamed into
 * place only when complete, so a crash mid-write leaves the previous checkpoint the newest valid one;
 * the last {@code keep} are kept.
 */
public final class CheckpointStore {

    private static final ObjectMapper JSON = new ObjectMapper();
    static final String MODEL = "model.safetensors", M1 = "exp_avg.safetensors", M2 = "exp_avg_sq.safetensors",
            STATE = "state.json";

    private final Path root;
    private final FileSystem fs;
    private final int keep;

    public CheckpointStore(String out, int keep, Configuration conf) throws IOException {
        if (out == null || out.isBlank()) {
            throw new IllegalArgumentException("checkpoints need run.out (or --out)");
        }
        this.root = new Path(out, "checkpoints");
        this.fs = root.getFileSystem(conf);
        this.keep = Math.max(1, keep);
    }

    public Path root() {
        return root;
    }

    /** A loaded checkpoint. */
    public record Checkpoint(long step, float[] params, OptimizerState optimizer, String path, Map<String, String> extra) {
    }

    public static String dirName(long step) {
        return String.format("step-%010d", step);
    }

    /** Writes the checkpoint of {@code step} atomically and prunes to the newest {@code keep}. */
    public String write(long step, ParamLayout layout, float[] params, OptimizerState opt, String configHash,
                        Map<String, String> extra, Runnable beforeCommit) throws IOException {
        fs.mkdirs(root);
        Path tmp = new Path(root, ".tmp-" + dirName(step) + "-" + Long.toHexString(System.nanoTime()));
        fs.mkdirs(tmp);
        // sorted: Map.of's iteration order changes from JVM to JVM, and checkpoints must be byte-identical
        Map<String, String> meta = new java.util.TreeMap<>(Map.of("format", "ouro-checkpoint-1", "step",
                Long.toString(step), "config_hash", configHash));
        ObjectNode state = JSON.createObjectNode();
        state.put("step", step);
        state.put("optimizer_step", opt.step());
        state.put("config_hash", configHash);
        new java.util.TreeMap<>(extra).forEach(state::put);
        ObjectNode sums = state.putObject("sha256");
        sums.put(MODEL, writeTensors(new Path(tmp, MODEL), layout, params, meta));
        sums.put(M1, writeTensors(new Path(tmp, M1), layout, opt.m(), meta));
        sums.put(M2, writeTensors(new Path(tmp, M2), layout, opt.v(), meta));
        try (FSDataOutputStream out = fs.create(new Path(tmp, STATE), true)) {
            out.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(state));
        }
        if (beforeCommit != null) {
            beforeCommit.run();
        }
        Path dst = new Path(root, dirName(step));
        if (fs.exists(dst)) {
            fs.delete(dst, true);
        }
        if (!fs.rename(tmp, dst)) {
            throw new IOException("could not rename " + tmp + " to " + dst);
        }
        prune();
        return dst.toString();
    }

    private String writeTensors(Path p, ParamLayout layout, float[] flat, Map<String, String> meta) throws IOException {
        MessageDigest md = sha256();
        try (FSDataOutputStream raw = fs.create(p, true);
             OutputStream out = new DigestOutputStream(new java.io.BufferedOutputStream(raw, 1 << 20), md)) {
            Safetensors.write(out, layout, flat, meta);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** Steps of the committed checkpoints, oldest first. */
    public List<Long> steps() throws IOException {
        List<Long> out = new ArrayList<>();
        if (!fs.exists(root)) {
            return out;
        }
        for (FileStatus s : fs.listStatus(root)) {
            String n = s.getPath().getName();
            if (s.isDirectory() && n.matches("step-\\d{10}")) {
                out.add(Long.parseLong(n.substring(5)));
            }
        }
        out.sort(null);
        return out;
    }

    private void prune() throws IOException {
        List<Long> all = steps();
        for (int i = 0; i < all.size() - keep; i++) {
            fs.delete(new Path(root, dirName(all.get(i))), true);
        }
        for (FileStatus s : fs.listStatus(root)) {
            if (s.getPath().getName().startsWith(".tmp-")) {
                fs.delete(s.getPath(), true); // left by a writer that crashed
            }
        }
    }

    /** Loads and verifies the checkpoint of {@code step}; errors name the file and what is wrong. */
    public Checkpoint load(long step, ParamLayout layout, String configHash) throws IOException {
        Path dir = new Path(root, dirName(step));
        JsonNode state;
        try (FSDataInputStream in = fs.open(new Path(dir, STATE))) {
            state = JSON.readTree(in.readAllBytes());
        }
        if (!configHash.equals(state.path("config_hash").asText())) {
            throw new ConfigMismatchException(dir + ": written by a run with config hash "
                    + state.path("config_hash").asText() + ", this run's is " + configHash
                    + " (model shape, data, seed, sequence length or batch differ); refusing to resume from it");
        }
        float[] p = readTensors(new Path(dir, MODEL), layout, state.path("sha256").path(MODEL).asText());
        float[] m = readTensors(new Path(dir, M1), layout, state.path("sha256").path(M1).asText());
        float[] v = readTensors(new Path(dir, M2), layout, state.path("sha256").path(M2).asText());
        Map<String, String> extra = new java.util.TreeMap<>();
        state.fields().forEachRemaining(e -> {
            if (e.getValue().isValueNode()) {
                extra.put(e.getKey(), e.getValue().asText());
            }
        });
        return new Checkpoint(state.path("step").asLong(), p, new OptimizerState(state.path("optimizer_step").asLong(), m, v),
                dir.toString(), extra);
    }

    private float[] readTensors(Path p, ParamLayout layout, String expectSha) throws IOException {
        MessageDigest md = sha256();
        float[] flat;
        try (InputStream in = new DigestInputStream(fs.open(p), md)) {
            flat = Safetensors.read(in, p.toString(), layout).flat();
            in.transferTo(OutputStream.nullOutputStream());
        }
        String sha = HexFormat.of().formatHex(md.digest());
        if (!sha.equals(expectSha)) {
            throw new IOException(p + ": SHA-256 " + sha + " does not match state.json's " + expectSha + " (corrupt)");
        }
        return flat;
    }

    /**
     * The newest checkpoint at or before {@code atMost} that loads and verifies; corrupt or incomplete ones
     * are skipped with a warning. A config mismatch is not skipped: it is an error.
     */
    public Optional<Checkpoint> latestValid(long atMost, ParamLayout layout, String configHash, Consumer<String> warn)
            throws IOException {
        List<Long> all = steps();
        for (int i = all.size() - 1; i >= 0; i--) {
            long s = all.get(i);
            if (s > atMost) {
                continue;
            }
            try {
                return Optional.of(load(s, layout, configHash));
            } catch (ConfigMismatchException e) {
                throw e;
            } catch (IOException | RuntimeException e) {
                warn.accept("skipping checkpoint " + new Path(root, dirName(s)) + ": " + e.getMessage());
            }
        }
        return Optional.empty();
    }

    /** Whether a valid-looking checkpoint of {@code step} exists (its state file is there). */
    public boolean has(long step) throws IOException {
        return fs.exists(new Path(new Path(root, dirName(step)), STATE));
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The checkpoint belongs to a different configuration. */
    public static final class ConfigMismatchException extends RuntimeException {
        public ConfigMismatchException(String m) {
            super(m);
        }
    }
}
