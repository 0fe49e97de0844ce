package io.ouro.orchestrator.bench;

import io.ouro.orchestrator.train.ManifestSource;
import io.ouro.orchestrator.train.ShardSources;
import io.ouro.tokenizer.shard.Manifest;
import io.ouro.tokenizer.shard.ShardFormat;
import io.ouro.tokenizer.shard.ShardReader;
import io.ouro.tokenizer.shard.ShardStream;
import io.ouro.tokenizer.shard.ShardTable;
import io.ouro.tokenizer.shard.ShardWriter;
import io.ouro.worker.data.Prefetcher;
import io.ouro.worker.data.Sampler;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code tests/bench.sh data [tokens] [shards] [steps]}: the training data path at corpus scale. Writes a
 * corpus of random documents (default 10^9 tokens in 64 shards, uint16, record batches of 1024 tokens) on
 * the local filesystem, samples the windows of {@code steps} steps as training does (seq 4096, W = 2 ranks
 * of 8 sequences, each rank through its prefetcher), and counts the bytes read in Hadoop's FileSystem
 * statistics. The reader before this format (whole shards, a SHA-256 pass then every record batch, the
 * last 4 kept per rank) is gone: its bytes are counted by its rule on the same window sequence, with the
 * time of one whole-shard load measured here. Then times loading a manifest of 10^6 shards. Deletes what
 * it wrote.
 */
public final class DataBench {

    private DataBench() {
    }

    public static void main(String[] args) throws Exception {
        long tokens = args.length > 0 ? Long.parseLong(args[0]) : 1_000_000_000L;
        int shards = args.length > 1 ? Integer.parseInt(args[1]) : 64;
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 300;
        int seq = 4096, world = 2, perRank = 8;
        File dir = new File(System.getProperty("java.io.tmpdir"), "ouro-data-bench-" + ProcessHandle.current().pid());
        long need = tokens * 2 + (tokens >> 2) + (400L << 20);
        if (dir.getParentFile().getUsableSpace() < 2 * need) {
            throw new IllegalStateException(dir.getParent() + ": " + (dir.getParentFile().getUsableSpace() >> 20)
                    + " MB free, the bench needs about " + (need >> 20) + " MB (twice that to be safe)");
        }
        FileSystem fs = FileSystem.getLocal(new Configuration()).getRaw();
        Path root = new Path(dir.toURI());
        try {
            long t0 = System.nanoTime();
            Manifest m = write(fs, root, tokens, shards);
            double writeS = (System.nanoTime() - t0) / 1e9;
            long onDisk = 0;
            for (int i = 0; i < m.shards().size(); i++) {
                onDisk += m.shards().get(i).bytes();
            }
            System.out.printf(Locale.ROOT, "corpus: %,d tokens in %d shards, %,d bytes, written in %.1f s (%.0f MB/s)%n",
                    m.tokens(), shards, onDisk, writeS, onDisk / 1e6 / writeS);

            ManifestSource src = ShardSources.over(ShardStream.open(fs, new Path(root, "manifest.json")));
            Sampler smp = new Sampler(List.of(src), List.of("web"), new double[] {1}, seq, 17, 0, false);
            FileSystem.Statistics stats = FileSystem.getStatistics("file", fs.getClass());
            long before = stats.getBytesRead();
            long windows = 0;
            long t1 = System.nanoTime();
            for (int rank = 0; rank < world; rank++) {
                int rk = rank;
                try (Prefetcher pf = new Prefetcher(s -> smp.batch(s, s * perRank * world, perRank * world, rk, world),
                        "rank " + rank, 0, steps, 2, 600_000)) {
                    for (int s = 0; s < steps; s++) {
                        windows += pf.take().rows();
                    }
                }
            }
            double sampleS = (System.nanoTime() - t1) / 1e9;
            long read = stats.getBytesRead() - before;
            long delivered = windows * (seq + 1) * 2L;
            double amp = (double) read / delivered;
            System.out.printf(Locale.ROOT, "ours: %d steps x %d ranks x %d sequences of %d tokens: %,d windows, %,d bytes"
                            + " delivered, %,d bytes read, amplification %.3f, %.0f windows/s"
                            + " (page cache warm from writing)%n", steps, world, perRank, seq, windows, delivered, read,
                    amp, windows / sampleS);

            // the old reader by its rule: per rank, a whole-shard load (SHA-256 pass + every batch) for each
            // window whose shard is not among the last 4 loaded
            long oldRead = 0, loads = 0;
            ShardTable t = m.shards();
            for (int rank = 0; rank < world; rank++) {
                Map<Integer, Boolean> cache = new LinkedHashMap<>(8, 0.75f, true) {
                    @Override
                    protected boolean removeEldestEntry(Map.Entry<Integer, Boolean> e) {
                        return size() > 4;
                    }
                };
                for (int s = 0; s < steps; s++) {
                    for (int row = 0; row < perRank; row++) {
                        long[] w = smp.window((long) s * perRank * world + (long) rank * perRank + row);
                        long a = w[1] * seq, b = a + seq;
                        for (int sh = t.shardOf(a); sh <= t.shardOf(b); sh++) {
                            if (cache.put(sh, true) == null) {
                                oldRead += 2 * t.get(sh).bytes();
                                loads++;
                            }
                        }
                    }
                }
            }
            long t2 = System.nanoTime();
            int timed = Math.min(2, shards);
            for (int i = 0; i < timed; i++) {
                oldLoad(fs, new Path(root, t.path(i)));
            }
            double loadS = (System.nanoTime() - t2) / 1e9 / timed;
            double oldAmp = (double) oldRead / delivered;
            double oldWps = windows / (loads * loadS);
            System.out.printf(Locale.ROOT, "old reader (its rule on the same windows): %,d whole-shard loads, %,d bytes"
                    + " read, amplification %.0f; one load (SHA-256 pass + all batches into int[]) took %.2f s here:"
                    + " %.1f windows/s%n", loads, oldRead, oldAmp, loadS, oldWps);
            src.close();

            double[] big = bigManifest(fs, new Path(root, "big"), 1_000_000);
            System.out.printf(Locale.ROOT, "manifest of 10^6 shards: %,.0f bytes, loaded in %.2f s, %.0f MB of heap%n",
                    big[0], big[1], big[2]);
            System.out.printf(Locale.ROOT, "RESULT data read_amplification=%.3f windows_per_s=%.0f tokens=%d shards=%d"
                            + " steps=%d world=%d seq=%d bytes_read=%d bytes_delivered=%d old_read_amplification=%.0f"
                            + " old_windows_per_s=%.1f manifest_1e6_load_s=%.2f manifest_1e6_heap_mb=%.0f ratio=%.3f%n",
                    amp, windows / sampleS, m.tokens(), shards, steps, world, seq, read, delivered, oldAmp, oldWps,
                    big[1], big[2], amp);
        } finally {
            fs.delete(root, true);
        }
    }

    /** Random documents (1-8191 tokens, ids below 50,000), shards written two at a time. */
    static Manifest write(FileSystem fs, Path root, long tokens, int shards) throws Exception {
        fs.mkdirs(root);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        List<Future<ShardTable.Entry>> out = new ArrayList<>();
        for (int s = 0; s < shards; s++) {
            int sh = s;
            long want = tokens / shards + (s < tokens % shards ? 1 : 0);
            out.add(pool.submit(() -> {
                String name = String.format("web-u%05d-0000.arrow", sh);
                long key = ShardFormat.crcKey("web", name, "bench", "bench");
                long x = 0x9E3779B97F4A7C15L * (sh + 1);
                int[] doc = new int[8192];
                try (FSDataOutputStream o = fs.create(new Path(root, name), true);
                     ShardWriter w = new ShardWriter(new java.io.BufferedOutputStream(o, 1 << 20), true, "web", "bench",
                             50_000, ShardFormat.DEFAULT_BATCH_TOKENS, key)) {
                    while (w.tokens() < want) {
                        x ^= x << 13;
                        x ^= x >>> 7;
                        x ^= x << 17;
                        int n = (int) Math.min(want - w.tokens() - 1, 1 + ((x >>> 40) & 8191) % 8191);
                        for (int i = 0; i < n; i++) {
                            x ^= x << 13;
                            x ^= x >>> 7;
                            x ^= x << 17;
                            doc[i] = (int) ((x >>> 33) % 50_000);
                        }
                        w.add(doc, n);
                    }
                    ShardWriter.Info i = w.finish();
                    return new ShardTable.Entry(name, i.documents(), i.tokens(), i.bytes(), i.sha256(), i.indexOffset(),
                            key);
                }
            }));
        }
        ShardTable t = new ShardTable();
        for (Future<ShardTable.Entry> f : out) {
            t.add(f.get());
        }
        pool.shutdown();
        Manifest m = manifest(t);
        try (FSDataOutputStream o = fs.create(new Path(root, "manifest.json"), true)) {
            m.write(o);
        }
        return m;
    }

    static Manifest manifest(ShardTable t) {
        return new Manifest(ShardFormat.FORMAT, "web", "bench", "bench", "0".repeat(64), 50_257, 50_000, "uint16",
                ShardFormat.DEFAULT_BATCH_TOKENS, t, 0, Map.of(), Map.of(), "");
    }

    /** What the old reader did per shard: a SHA-256 pass over the file, then every batch into an int[]. */
    static void oldLoad(FileSystem fs, Path p) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        try (InputStream in = fs.open(p)) {
            byte[] b = new byte[1 << 20];
            for (int n; (n = in.read(b)) > 0; ) {
                md.update(b, 0, n);
            }
        }
        if (ShardReader.read(fs, p).tokens().length == 0) {
            throw new IllegalStateException(p + ": empty");
        }
    }

    /** Writes a manifest of n shards and loads it: {bytes, seconds, MB of heap the loaded manifest holds}. */
    static double[] bigManifest(FileSystem fs, Path dir, int n) throws IOException {
        ShardTable t = new ShardTable();
        for (int i = 0; i < n; i++) {
            t.add(new ShardTable.Entry(String.format("web-u%05d-%04d.arrow", i / 16, i % 16), 30_000, 16_777_216,
                    34_000_000, String.format("%064x", i), 33_900_000, i * 0x9E3779B97F4A7C15L));
        }
        Path p = new Path(dir, "manifest.json");
        try (FSDataOutputStream o = fs.create(p, true)) {
            manifest(t).write(o);
        }
        t = null;
        long size = fs.getFileStatus(p).getLen();
        Runtime rt = Runtime.getRuntime();
        System.gc();
        long heap0 = rt.totalMemory() - rt.freeMemory();
        long t0 = System.nanoTime();
        Manifest m = Manifest.read(fs, p);
        double sec = (System.nanoTime() - t0) / 1e9;
        System.gc();
        long heap1 = rt.totalMemory() - rt.freeMemory();
        if (m.shards().size() != n || m.tokens() != 16_777_216L * n) {
            throw new IllegalStateException("the manifest did not load whole");
        }
        return new double[] {size, sec, (heap1 - heap0) / 1e6};
    }
}
