package io.ouro.orchestrator.checkpoint;

import io.ouro.tokenizer.fs.HadoopFiles;
import io.ouro.worker.model.FlatTensors;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.worker.model.OptimizerState;
import io.ouro.worker.model.ParamLayout;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Checkpoints under {@code <out>/checkpoints/} on any Hadoop FileSystem, format {@value #FORMAT}.
 *
 * <p>The ranks of a run write a checkpoint into {@code .pending-step-%010d-<tag>/}, each its own shard
 * ({@link ShardWriter}: its range of the weights and both AdamW moments, and a marker). Once every shard's
 * marker is there, {@link #tryCommit} writes {@value #META} (step, optimizer update count, config hash, the
 * W that wrote it, the tensors, the run state, the shards and their sizes) and renames the directory to
 * {@code step-%010d}: a checkpoint counts only once every slice and the metadata are committed, and a crash
 * at any point leaves the previous one the newest. The newest valid one is found from {@value #META} and
 * file sizes alone; a shard whose blocks fail their checksums when read marks its checkpoint {@value #CORRUPT}
 * so that the next search skips it. The last {@code keep} are kept.
 */
public final class CheckpointStore {

    public static final String FORMAT = "ouro-checkpoint-2";
    static final String META = "checkpoint.json", CORRUPT = "CORRUPT", PENDING = ".pending-";
    private static final ObjectMapper JSON = new ObjectMapper();

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

    public FileSystem fs() {
        return fs;
    }

    public static String dirName(long step) {
        return String.format("step-%010d", step);
    }

    static String shardName(int rank, int world) {
        return String.format("shard-%05d-of-%05d.safetensors", rank, world);
    }

    static String markerName(int rank, int world) {
        return String.format("shard-%05d-of-%05d.json", rank, world);
    }

    /** Written instead of a marker when a rank's background write failed, holding the error. */
    static String errorName(int rank, int world) {
        return String.format("shard-%05d-of-%05d.error", rank, world);
    }

    /** Where the attempt {@code tag} writes the checkpoint of {@code step} before it is committed. */
    public Path pendingDir(long step, String tag) {
        return new Path(root, PENDING + dirName(step) + "-" + tag);
    }

    /** A committed checkpoint as its metadata describes it. */
    public record Info(long step, long optimizerStep, int world, String path, Map<String, String> extra) {
    }

    /** The writing of a checkpoint failed on a rank; the message is that rank's error. */
    public static final class WriteFailedException extends IOException {
        public WriteFailedException(String m) {
            super(m);
        }
    }

    /**
     * Commits the pending checkpoint of {@code step} in {@code pending} if all {@code world} shards are
     * there: checks that their markers agree, writes {@value #META}, renames the directory into place and
     * prunes. Returns the committed path, or empty while shards are missing.
     *
     * @throws WriteFailedException when a rank recorded an error instead of its shard
     */
    public Optional<String> tryCommit(long step, Path pending, int world) throws IOException {
        List<JsonNode> markers = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            Path err = new Path(pending, errorName(r, world));
            if (fs.exists(err)) {
                throw new WriteFailedException(err + ": " + new String(readAll(err), StandardCharsets.UTF_8));
            }
            Path m = new Path(pending, markerName(r, world));
            if (!fs.exists(m)) {
                return Optional.empty();
            }
            markers.add(readJson(fs, m));
        }
        JsonNode first = markers.get(0);
        ObjectNode meta = JSON.createObjectNode();
        meta.put("format", FORMAT);
        meta.put("step", step);
        meta.put("optimizer_step", first.path("optimizer_step").asLong());
        meta.put("config_hash", first.path("config_hash").asText());
        meta.put("world", world);
        meta.set("tensors", first.path("tensors"));
        meta.set("extra", first.path("extra"));
        var shards = meta.putArray("shards");
        long end = 0;
        for (JsonNode m : markers) {
            for (String f : new String[] {"step", "optimizer_step", "config_hash", "world", "tensors"}) {
                if (!m.path(f).equals(first.path(f))) {
                    throw new WriteFailedException(pending + ": shard " + m.path("rank") + " has " + f + " " + m.path(f)
                            + ", shard 0 has " + first.path(f));
                }
            }
            if (m.path("range").path(0).asLong() != end) {
                throw new WriteFailedException(pending + ": shard " + m.path("rank") + " starts at element "
                        + m.path("range").path(0) + ", the shard before it ends at " + end);
            }
            end = m.path("range").path(1).asLong();
            shards.addObject().put("file", m.path("file").asText()).put("bytes", m.path("bytes").asLong())
                    .set("range", m.path("range"));
        }
        HadoopFiles.write(fs, new Path(pending, ".tmp-" + META), new Path(pending, META),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(meta));
        Path dst = new Path(root, dirName(step));
        if (fs.exists(dst)) {
            fs.delete(pending, true); // another attempt committed this step first; runs are deterministic
        } else {
            HadoopFiles.rename(fs, pending, dst);
        }
        prune();
        return Optional.of(dst.toString());
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

    /**
     * Keeps the newest {@code keep} checkpoints; removes pending directories of steps that a committed
     * checkpoint has reached (attempts that failed or lost the race), never those still ahead of it.
     */
    private void prune() throws IOException {
        List<Long> all = steps();
        for (int i = 0; i < all.size() - keep; i++) {
            fs.delete(new Path(root, dirName(all.get(i))), true);
        }
        long newest = all.isEmpty() ? -1 : all.get(all.size() - 1);
        for (FileStatus s : fs.listStatus(root)) {
            String n = s.getPath().getName();
            if (n.startsWith(PENDING + "step-") && Long.parseLong(n.substring(PENDING.length() + 5,
                    PENDING.length() + 15)) <= newest) {
                fs.delete(s.getPath(), true);
            }
        }
    }

    /**
     * The metadata of the committed checkpoint of {@code step}, checked without reading any shard: format,
     * config hash (unless {@code configHash} is null: any run's), no corruption mark, every shard file there
     * with the size its marker recorded.
     *
     * @throws ConfigMismatchException when another config wrote it
     */
    public Info info(long step, String configHash) throws IOException {
        Path dir = new Path(root, dirName(step));
        if (fs.exists(new Path(dir, CORRUPT))) {
            throw new IOException(dir + " is marked corrupt: " + new String(readAll(new Path(dir, CORRUPT)),
                    StandardCharsets.UTF_8));
        }
        Path metaFile = new Path(dir, META);
        if (!fs.exists(metaFile)) {
            throw new IOException(dir + ": no " + META + " (not a checkpoint of format " + FORMAT + ")");
        }
        JsonNode meta = readJson(fs, metaFile);
        if (!FORMAT.equals(meta.path("format").asText())) {
            throw new IOException(metaFile + ": format " + meta.path("format") + ", expected " + FORMAT);
        }
        String hash = meta.path("config_hash").asText();
        if (configHash != null && !configHash.equals(hash)) {
            throw new ConfigMismatchException(dir + ": written by a run with config hash " + hash + ", this run's is "
                    + configHash + " (model shape, data, seed, sequence length or global batch differ); refusing to"
                    + " resume from it");
        }
        for (JsonNode s : meta.path("shards")) {
            Path f = new Path(dir, s.path("file").asText());
            long len = fs.exists(f) ? fs.getFileStatus(f).getLen() : -1;
            if (len != s.path("bytes").asLong()) {
                throw new IOException(f + ": " + (len < 0 ? "missing" : len + " bytes") + ", " + META + " says "
                        + s.path("bytes").asLong() + " bytes");
            }
        }
        Map<String, String> extra = new java.util.TreeMap<>();
        meta.path("extra").fields().forEachRemaining(e -> extra.put(e.getKey(), e.getValue().asText()));
        return new Info(meta.path("step").asLong(), meta.path("optimizer_step").asLong(), meta.path("world").asInt(),
                dir.toString(), extra);
    }

    /**
     * The newest committed checkpoint at or before {@code atMost} whose metadata checks out (see
     * {@link #info}); others are skipped with a warning. A config mismatch is not skipped: it is an error.
     * The one implementation of "newest valid checkpoint", for resume and for re-running a failed segment.
     */
    public Optional<Info> latestValid(long atMost, String configHash, Consumer<String> warn) throws IOException {
        List<Long> all = steps();
        for (int i = all.size() - 1; i >= 0; i--) {
            long s = all.get(i);
            if (s > atMost) {
                continue;
            }
            try {
                return Optional.of(info(s, configHash));
            } catch (ConfigMismatchException e) {
                throw e;
            } catch (IOException | RuntimeException e) {
                warn.accept("skipping checkpoint " + new Path(root, dirName(s)) + ": " + e.getMessage());
            }
        }
        return Optional.empty();
    }

    /** Opens the committed checkpoint of {@code step} for reading, after the checks of {@link #info}. */
    public CheckpointReader open(long step, String configHash) throws IOException {
        info(step, configHash);
        Path dir = new Path(root, dirName(step));
        return new CheckpointReader(fs, dir, readJson(fs, new Path(dir, META)));
    }

    /** A checkpoint loaded into flat buffers: for models that fit one Java array. */
    public record Checkpoint(long step, float[] params, OptimizerState optimizer, String path, Map<String, String> extra) {
    }

    /**
     * Loads every tensor of the checkpoint of {@code step} for {@code layout}, verifying each block; a
     * checkpoint whose bytes turn out corrupt is marked so and the error names the file and the block.
     */
    public Checkpoint load(long step, ParamLayout layout, String configHash) throws IOException {
        return read(step, layout, configHash, r -> {
            float[][] flat = new float[StateKind.values().length][];
            for (StateKind k : StateKind.values()) {
                flat[k.ordinal()] = new float[layout.arraySize()];
                r.readAll(k, layout.tensors(), FlatTensors.sink(flat[k.ordinal()]));
            }
            return new Checkpoint(r.step(), flat[0], new OptimizerState(r.optimizerStep(), flat[1], flat[2]), r.path(),
                    r.extra());
        });
    }

    /** What a use of a checkpoint's reader makes; it may read by {@link CheckpointReader#source}. */
    @FunctionalInterface
    public interface ReaderUse<T> {
        T apply(CheckpointReader r) throws IOException;
    }

    /**
     * Opens the checkpoint of {@code step}, checks it holds {@code layout}'s tensors, and hands its reader to
     * {@code use} (which streams what it needs, of any size); a checkpoint whose bytes turn out corrupt, whether
     * read directly or through a source, is marked so and the error names the file and the block.
     */
    public <T> T read(long step, ParamLayout layout, String configHash, ReaderUse<T> use) throws IOException {
        try (CheckpointReader r = open(step, configHash)) {
            r.requireLayout(layout.tensors());
            try {
                return use.apply(r);
            } catch (java.io.UncheckedIOException e) {
                IOException cause = e.getCause();
                if (cause instanceof CheckpointReader.CorruptException || cause instanceof org.apache.hadoop.fs.ChecksumException) {
                    markCorrupt(step, cause.getMessage());
                }
                throw cause;
            } catch (CheckpointReader.CorruptException | org.apache.hadoop.fs.ChecksumException e) {
                markCorrupt(step, e.getMessage());
                throw e;
            }
        }
    }

    /** Marks the checkpoint of {@code step} so that the search for the newest valid one skips it. */
    public void markCorrupt(long step, String why) {
        Path dir = new Path(root, dirName(step));
        try {
            if (fs.exists(dir) && !fs.exists(new Path(dir, CORRUPT))) {
                HadoopFiles.write(fs, new Path(dir, ".tmp-" + CORRUPT + "-" + System.nanoTime()),
                        new Path(dir, CORRUPT), why.getBytes(StandardCharsets.UTF_8));
            }
        } catch (IOException e) {
            // another rank marked it first, or the store is unreachable: the search will find out again
        }
    }

    static JsonNode readJson(FileSystem fs, Path p) throws IOException {
        try {
            return JSON.readTree(readAll(fs, p));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IOException(p + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    private byte[] readAll(Path p) throws IOException {
        return readAll(fs, p);
    }

    /** A small metadata file (markers, checkpoint.json, error notes); never a shard. */
    private static byte[] readAll(FileSystem fs, Path p) throws IOException {
        long len = fs.getFileStatus(p).getLen();
        if (len > (64L << 20)) {
            throw new IOException(p + ": " + len + " bytes is not a metadata file");
        }
        try (FSDataInputStream in = fs.open(p)) {
            return in.readNBytes((int) len);
        }
    }

    /** The checkpoint belongs to a different configuration. */
    public static final class ConfigMismatchException extends RuntimeException {
        public ConfigMismatchException(String m) {
            super(m);
        }
    }
}
