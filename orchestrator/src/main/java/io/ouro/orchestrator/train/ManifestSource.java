package io.ouro.orchestrator.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ouro.orchestrator.config.ConfigException;
import io.ouro.tokenizer.job.Shards;
import io.ouro.worker.data.TokenSource;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The token stream of a tokenization job's shards, in manifest order, read through the Hadoop
 * FileSystem API ({@code hdfs://}, {@code file://}, ...). Shards are loaded when first touched, checked
 * against the manifest's SHA-256 and token count, and the last few are kept in memory.
 */
final class ManifestSource implements TokenSource {

    private static final int CACHED = 4;

    private final String manifest;
    private final Path dir;
    private final FileSystem fs;
    private final String[] paths;
    private final String[] sha;
    private int eos = -1;
    private final long[] starts; // cumulative token offsets, one more than shards
    private final Map<Integer, int[]> cache = new LinkedHashMap<>(8, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Integer, int[]> e) {
            return size() > CACHED;
        }
    };

    private ManifestSource(String manifest, Path dir, FileSystem fs, String[] paths, String[] sha, long[] starts) {
        this.manifest = manifest;
        this.dir = dir;
        this.fs = fs;
        this.paths = paths;
        this.sha = sha;
        this.starts = starts;
    }

    static TokenSource open(String manifest, int vocab) {
        try {
            Path p = new Path(manifest);
            FileSystem fs = p.getFileSystem(new Configuration());
            JsonNode m;
            try (InputStream in = fs.open(p)) {
                m = new ObjectMapper().readTree(in);
            }
            if (!Shards.FORMAT.equals(m.path("format").asText())) {
                throw new ConfigException(manifest + ": format '" + m.path("format").asText() + "' is not "
                        + Shards.FORMAT + " (not a manifest written by ouro tokenize?)");
            }
            if (m.path("vocab_size").asInt() > vocab) {
                throw new ConfigException(manifest + ": tokenized with a vocabulary of " + m.path("vocab_size").asInt()
                        + " ids, but the model has " + vocab + " (model.vocab)");
            }
            JsonNode shards = m.path("shards");
            String[] paths = new String[shards.size()], sha = new String[shards.size()];
            long[] starts = new long[shards.size() + 1];
            for (int i = 0; i < shards.size(); i++) {
                paths[i] = shards.get(i).path("path").asText();
                sha[i] = shards.get(i).path("sha256").asText();
                starts[i + 1] = starts[i] + shards.get(i).path("tokens").asLong();
            }
            ManifestSource src = new ManifestSource(manifest, p.getParent(), fs, paths, sha, starts);
            src.eos = m.path("eos_id").asInt(-1);
            return src;
        } catch (IOException e) {
            throw new UncheckedIOException(manifest + ": cannot read the manifest: " + e.getMessage(), e);
        }
    }

    @Override
    public int eosId() {
        return eos;
    }

    @Override
    public long tokens() {
        return starts[starts.length - 1];
    }

    @Override
    public synchronized void read(long start, int[] dst, int off, int len) {
        if (start < 0 || start + len > tokens()) {
            throw new IndexOutOfBoundsException(manifest + ": tokens [" + start + ", " + (start + len) + ") outside [0, "
                    + tokens() + ")");
        }
        while (len > 0) {
            int s = java.util.Arrays.binarySearch(starts, start);
            s = s >= 0 ? s : -s - 2;
            while (starts[s + 1] == starts[s]) {
                s++; // empty shards
            }
            int[] t = shard(s);
            int from = (int) (start - starts[s]);
            int n = (int) Math.min(len, t.length - from);
            System.arraycopy(t, from, dst, off, n);
            start += n;
            off += n;
            len -= n;
        }
    }

    private int[] shard(int i) {
        return cache.computeIfAbsent(i, k -> {
            Path p = new Path(dir, paths[k]);
            try {
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                try (InputStream in = fs.open(p)) {
                    byte[] buf = new byte[1 << 20];
                    int n;
                    while ((n = in.read(buf)) > 0) {
                        md.update(buf, 0, n);
                    }
                }
                String got = HexFormat.of().formatHex(md.digest());
                if (!got.equals(sha[k])) {
                    throw new IOException(p + ": SHA-256 " + got + " does not match the manifest's " + sha[k]
                            + " (corrupt or replaced shard)");
                }
                int[] t = Shards.read(fs, p).tokens();
                if (t.length != starts[k + 1] - starts[k]) {
                    throw new IOException(p + ": holds " + t.length + " tokens, the manifest says " + (starts[k + 1] - starts[k]));
                }
                return t;
            } catch (IOException | java.security.NoSuchAlgorithmException e) {
                throw new UncheckedIOException(new IOException(e.getMessage(), e));
            }
        });
    }

    @Override
    public String describe() {
        return manifest + " (" + paths.length + " shards, " + tokens() + " tokens)";
    }
}
