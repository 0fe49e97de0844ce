package io.ouro.orchestrator.train;

import io.ouro.tokenizer.shard.Manifest;
import io.ouro.tokenizer.shard.ShardFormat;
import io.ouro.tokenizer.shard.ShardStream;
import io.ouro.tokenizer.shard.ShardTable;
import io.ouro.tokenizer.shard.ShardWriter;
import io.ouro.worker.data.HeldOutSplit;
import io.ouro.worker.data.Prefetcher;
import io.ouro.worker.data.Sampler;
import io.ouro.worker.data.TokenSource;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Training's reads of the shards: on HDFS (MiniDFSCluster) the bytes read stay within twice the bytes of
 * the windows trained on; a source of more than 2^31 tokens (its size given by the manifest, its tokens
 * synthesised) is sampled and split like any other.
 */
class ShardReadsHdfsTest {

    static final int EOS = 50_000;

    @TempDir
    java.nio.file.Path tmp;

    /** Writes a corpus of random documents; returns its token stream. */
    static int[] writeCorpus(FileSystem fs, Path dir, int shards, int tokensPerShard, long seed) throws IOException {
        SplittableRandom r = new SplittableRandom(seed);
        ShardTable t = new ShardTable();
        int[] all = new int[shards * (tokensPerShard + 4096)];
        int at = 0;
        for (int s = 0; s < shards; s++) {
            String name = String.format("web-u%05d-0000.arrow", s);
            long key = ShardFormat.crcKey("web", name, "tok", "in");
            ShardWriter.Info info;
            try (FSDataOutputStream o = fs.create(new Path(dir, name), true);
                 ShardWriter w = new ShardWriter(o, true, "web", "tok", EOS, ShardFormat.DEFAULT_BATCH_TOKENS, key)) {
                int[] doc = new int[4096];
                while (w.tokens() < tokensPerShard) {
                    int n = 1 + r.nextInt(doc.length - 1);
                    for (int i = 0; i < n; i++) {
                        doc[i] = r.nextInt(EOS);
                    }
                    w.add(doc, n);
                    System.arraycopy(doc, 0, all, at, n);
                    all[at + n] = EOS;
                    at += n + 1;
                }
                info = w.finish();
            }
            t.add(new ShardTable.Entry(name, info.documents(), info.tokens(), info.bytes(), info.sha256(),
                    info.indexOffset(), key));
        }
        Manifest m = new Manifest(ShardFormat.FORMAT, "web", "in", "tok.json", "a".repeat(64), 50_257, EOS, "uint16",
                ShardFormat.DEFAULT_BATCH_TOKENS, t, 0, Map.of(), Map.of(), "");
        try (FSDataOutputStream o = fs.create(new Path(dir, "manifest.json"), true)) {
            m.write(o);
        }
        return Arrays.copyOf(all, at);
    }

    static long hdfsBytesRead() {
        return FileSystem.getAllStatistics().stream().filter(s -> s.getScheme().equals("hdfs"))
                .mapToLong(FileSystem.Statistics::getBytesRead).sum();
    }

    @Test
    @Timeout(300)
    void windowsAreReadByPositionWithinTwiceTheirBytesOnHdfs() throws Exception {
        Configuration conf = new Configuration();
        java.nio.file.Path base = tmp.resolve("minidfs");
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, base.toString());
        for (String k : new String[] {"dfs.datanode.address", "dfs.datanode.http.address", "dfs.datanode.ipc.address",
                "dfs.namenode.http-address", "dfs.namenode.secondary.http-address"}) {
            conf.set(k, "127.0.0.1:0");
        }
        MiniDFSCluster dfs = new MiniDFSCluster.Builder(conf, base.toFile()).numDataNodes(1).build();
        try {
            dfs.waitActive();
            FileSystem fs = dfs.getFileSystem();
            String root = "hdfs://127.0.0.1:" + dfs.getNameNodePort() + "/data";
            int[] all = writeCorpus(fs, new Path(root), 8, 1 << 18, 11);
            TokenSource src = ManifestSource.open(root + "/manifest.json", 50_257);
            assertEquals(all.length, src.tokens());
            int seq = 4096, perRank = 4, world = 2, steps = 40;
            Sampler smp = new Sampler(List.of(src), List.of("web"), new double[] {1}, seq, 3, 0, false);
            long before = hdfsBytesRead();
            long windows = 0;
            for (int rank = 0; rank < world; rank++) {
                int rk = rank;
                try (Prefetcher pf = new Prefetcher(s -> smp.batch(s, s * perRank * world, perRank * world, rk, world),
                        "rank " + rank, 0, steps, 2, 60_000)) {
                    for (long s = 0; s < steps; s++) {
                        Sampler.Batch b = pf.take();
                        for (int row = 0; row < b.rows(); row++) {
                            long[] w = smp.window(s * perRank * world + (long) rk * perRank + row);
                            int from = (int) (w[1] * seq);
                            assertArrayEquals(Arrays.copyOfRange(all, from, from + seq),
                                    Arrays.copyOfRange(b.tokens(), row * seq, (row + 1) * seq), "step " + s + " row " + row);
                            windows++;
                        }
                    }
                }
            }
            long read = hdfsBytesRead() - before, delivered = windows * (seq + 1) * 2L;
            double amp = (double) read / delivered;
            System.out.printf("HDFS: %d windows of %d tokens, %d bytes delivered, %d bytes read: amplification %.3f%n",
                    windows, seq + 1, delivered, read, amp);
            assertTrue(amp <= 2.0 && amp >= 1.0, "read amplification " + amp);
            src.close();
        } finally {
            dfs.shutdown();
        }
    }

    @Test
    void aSourceOfMoreThan2To31TokensIsSampledAndSplit() throws Exception {
        // three shards of 2^30 + 7 tokens each, as the manifest says; token p of shard s is a function of (s, p)
        String json = """
                {"format": "token-shard-2", "source": "big", "input": "in", "tokenizer": "t.json",
                 "tokenizer_sha256": "%s", "vocab_size": 65536, "eos_id": 65535, "token_type": "uint16",
                 "batch_tokens": 1024, "shards": [%s]}
                """.formatted("a".repeat(64), String.join(",", java.util.Collections.nCopies(3,
                "{\"path\": \"x.arrow\", \"documents\": 1, \"tokens\": 1073741831, \"bytes\": 1}")));
        java.nio.file.Path mp = tmp.resolve("big.json");
        java.nio.file.Files.writeString(mp, json);
        FileSystem local = FileSystem.getLocal(new Configuration());
        Manifest m = Manifest.read(local, new Path(mp.toUri()));
        long per = (1L << 30) + 7;
        ShardStream.Ranges synth = (shard, from, dst, off, len) -> {
            for (int i = 0; i < len; i++) {
                dst[off + i] = token(shard, from + i);
            }
        };
        TokenSource src = ManifestSource.checked(new ManifestSource(new ShardStream("big.json", m, synth)), "big.json",
                65536);
        assertEquals(3 * per, src.tokens());
        int seq = 4096;
        TokenSource[] split = HeldOutSplit.split(src, 0.001, 1);
        for (TokenSource side : new TokenSource[] {src, split[0], split[1]}) {
            Sampler smp = new Sampler(List.of(side), List.of("big"), new double[] {1}, seq, 2, 0, false);
            assertEquals((side.tokens() - 1) / seq, smp.samples());
            Sampler.Batch b = smp.batch(7, 7L * 16, 16, 0, 1);
            assertEquals(16 * seq, b.tokens().length);
        }
        // a window that straddles shards 1 and 2, far beyond 2^31
        int[] w = new int[seq + 1];
        long start = 2 * per - 100;
        src.read(start, w, 0, w.length);
        for (int i = 0; i < w.length; i++) {
            long p = start + i;
            assertEquals(token((int) (p / per), p % per), w[i], "token " + p);
        }
    }

    static int token(int shard, long p) {
        return (int) ((p * 31 + shard * 7919L) % 65535);
    }
}
