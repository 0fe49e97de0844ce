package io.ouro.tokenizer.shard;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The shard format's writer, manifest and window reader: any range of the stream reads back exactly, from
 * positioned reads of the batches it touches; damage is an error naming the file, the batch and the offset.
 */
class ShardStreamTest {

    static final int EOS = 999;

    @TempDir
    java.nio.file.Path tmp;

    /** Writes {@code shards} shards of random documents (some longer than a batch); returns the stream. */
    static int[] corpus(FileSystem fs, Path dir, int shards, int docsPerShard, int batchTokens, boolean uint16,
                        long seed) throws IOException {
        SplittableRandom r = new SplittableRandom(seed);
        ShardTable t = new ShardTable();
        int[] all = new int[0];
        for (int s = 0; s < shards; s++) {
            String name = String.format("src-%04d.arrow", s);
            long key = ShardFormat.crcKey("src", name, "tok", "in");
            ShardWriter.Info info;
            try (FSDataOutputStream o = fs.create(new Path(dir, name), true);
                 ShardWriter w = new ShardWriter(o, uint16, "src", "tok", EOS, batchTokens, key)) {
                for (int d = 0; d < docsPerShard; d++) {
                    int n = r.nextInt(10) == 0 ? r.nextInt(3 * batchTokens) : r.nextInt(batchTokens / 2);
                    int[] ids = new int[n];
                    for (int i = 0; i < n; i++) {
                        ids[i] = uint16 ? r.nextInt(EOS) : r.nextInt(EOS) + (r.nextBoolean() ? 70_000 : 0);
                    }
                    w.add(ids, n);
                    int at = all.length;
                    all = Arrays.copyOf(all, at + n + 1);
                    System.arraycopy(ids, 0, all, at, n);
                    all[at + n] = EOS;
                }
                info = w.finish();
            }
            assertEquals(fs.getFileStatus(new Path(dir, name)).getLen(), info.bytes());
            t.add(new ShardTable.Entry(name, info.documents(), info.tokens(), info.bytes(), info.sha256(),
                    info.indexOffset(), key));
        }
        Manifest m = new Manifest(ShardFormat.FORMAT, "src", "in", "tok.json", "a".repeat(64), uint16 ? 1000 : 100_000,
                EOS, uint16 ? "uint16" : "int32", batchTokens, t, 0, Map.of(), Map.of(), "");
        try (FSDataOutputStream o = fs.create(new Path(dir, "manifest.json"), true)) {
            m.write(o);
        }
        return all;
    }

    FileSystem local() throws IOException {
        return FileSystem.getLocal(new Configuration()).getRaw();
    }

    @Test
    void everyRangeReadsBackExactlyInBothTokenWidths() throws Exception {
        for (boolean uint16 : new boolean[] {true, false}) {
            FileSystem fs = local();
            Path dir = new Path(tmp.toUri().toString(), "c" + uint16);
            int[] all = corpus(fs, dir, 3, 60, 64, uint16, 7);
            try (ShardStream s = ShardStream.open(fs, new Path(dir, "manifest.json"))) {
                assertEquals(all.length, s.tokens());
                SplittableRandom r = new SplittableRandom(1);
                for (int k = 0; k < 500; k++) {
                    int len = r.nextInt(400) + 1, start = r.nextInt(all.length - len + 1);
                    int[] got = new int[len + 2];
                    s.read(start, got, 1, len);
                    assertArrayEquals(Arrays.copyOfRange(all, start, start + len), Arrays.copyOfRange(got, 1, len + 1),
                            "tokens [" + start + ", +" + len + ")");
                }
                int[] whole = new int[all.length];
                s.read(0, whole, 0, whole.length);
                assertArrayEquals(all, whole);
            }
            // Arrow's own file reader sees the same stream and the same documents
            Manifest m = Manifest.read(fs, new Path(dir, "manifest.json"));
            int at = 0;
            for (int i = 0; i < m.shards().size(); i++) {
                ShardReader.Content c = ShardReader.read(fs, new Path(dir, m.shards().path(i)));
                assertArrayEquals(Arrays.copyOfRange(all, at, at + c.tokens().length), c.tokens());
                assertEquals(60, c.docStarts().length);
                at += c.tokens().length;
            }
            assertEquals(all.length, at);
        }
    }

    @Test
    void theManifestRoundTripsAndNamesBadFields() throws Exception {
        FileSystem fs = local();
        Path dir = new Path(tmp.toUri().toString(), "m");
        corpus(fs, dir, 4, 10, 32, true, 3);
        Path mp = new Path(dir, "manifest.json");
        Manifest m = Manifest.read(fs, mp);
        assertArrayEquals(m.toJson(), Manifest.read(fs, mp).toJson());
        assertEquals(4, m.shards().size());
        assertEquals(m.shards().get(2), Manifest.parse(new java.io.ByteArrayInputStream(m.toJson()), "x").shards().get(2));
        String json = new String(m.toJson(), java.nio.charset.StandardCharsets.UTF_8);
        ShardException e = assertThrows(ShardException.class, () -> Manifest.parse(new java.io.ByteArrayInputStream(
                json.replaceFirst("\"tokens\" : \\d+", "\"tokens\" : \"many\"").getBytes()), "bad.json"));
        assertEquals("bad.json: shards[0].tokens: expected an integer >= 0, got many", e.getMessage());
        e = assertThrows(ShardException.class, () -> Manifest.parse(new java.io.ByteArrayInputStream(
                json.replaceFirst("\"tokens\" : (\\d+),\n    \"bytes_in\"", "\"tokens\" : 1,\n    \"bytes_in\"")
                        .getBytes()), "bad.json"));
        assertTrue(e.getMessage().startsWith("bad.json: totals.tokens: 1, but the shards hold "), e.getMessage());
    }

    /** Reads every window of the stream; returns the first error's message. */
    static String readAll(FileSystem fs, Path mp) throws IOException {
        try (ShardStream s = ShardStream.open(fs, mp)) {
            int[] b = new int[100];
            for (long at = 0; at + b.length <= s.tokens(); at += b.length) {
                s.read(at, b, 0, b.length);
            }
            return null;
        } catch (ShardException e) {
            return e.getMessage();
        }
    }

    @Test
    void aCorruptTruncatedOrReplacedShardIsAnErrorNamingFileAndBatch() throws Exception {
        FileSystem fs = local();
        Path dir = new Path(tmp.toUri().toString(), "d");
        corpus(fs, dir, 2, 80, 64, true, 5);
        Path mp = new Path(dir, "manifest.json");
        assertEquals(null, readAll(fs, mp));
        java.nio.file.Path s0 = tmp.resolve("d/src-0000.arrow"), s1 = tmp.resolve("d/src-0001.arrow");
        byte[] good = Files.readAllBytes(s0);
        Manifest m = Manifest.read(fs, mp);

        // one flipped bit in the ids of a record batch
        long dataAt = m.shards().indexOffset(0) / 3;
        try (RandomAccessFile f = new RandomAccessFile(s0.toFile(), "rw")) {
            f.seek(dataAt);
            int b = f.read();
            f.seek(dataAt);
            f.write(b ^ 0x10);
        }
        String err = readAll(fs, mp);
        assertTrue(err != null && err.contains(s0.getFileName().toString()) && err.matches(".*record batch \\d+ at offset \\d+.*")
                && err.contains("CRC32C"), err);

        // truncated to half
        Files.write(s0, Arrays.copyOf(good, good.length / 2));
        err = readAll(fs, mp);
        assertTrue(err != null && err.contains(s0.getFileName().toString()) && err.contains("record batches")
                && err.contains("beyond the end of the file (" + good.length / 2 + " bytes)"), err);

        // replaced by the other shard (its own index is consistent; its CRC key is not this shard's)
        Files.copy(s1, s0, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        err = readAll(fs, mp);
        assertTrue(err != null && err.contains(s0.getFileName().toString()) && err.matches("(?s).*record batch.*")
                && (err.contains("not the shard the manifest lists")), err);

        // and the whole-file check names it too
        StringBuilder log = new StringBuilder();
        assertEquals(1, Shards.verify(fs, mp, m, l -> log.append(l).append('\n')));
        assertTrue(log.toString().contains(s0.getFileName().toString()), log.toString());
        Files.write(s0, good);
        assertEquals(0, Shards.verify(fs, mp, m, l -> { }));
    }

    @Test
    void shardsOfTheFirstFormatAreRefusedWithTheCommandThatRewritesThem() throws Exception {
        FileSystem fs = local();
        Path dir = new Path(tmp.toUri().toString(), "v1");
        // a token-shard-1 shard as earlier jobs wrote it: one row per document, batches of documents
        int[] all = V1Shard.write(fs, new Path(dir, "old-u00000-0000.arrow"), EOS, 300, 11);
        String manifest = """
                {"format": "token-shard-1", "source": "old", "input": "in", "tokenizer": "t.json",
                 "tokenizer_sha256": "%s", "vocab_size": 1000, "eos_id": %d, "token_type": "uint16",
                 "shards": [{"path": "old-u00000-0000.arrow", "source": "old", "documents": 300, "tokens": %d,
                             "bytes": 1, "sha256": "%s", "tokenizer_sha256": "%s"}],
                 "totals": {"documents": 300, "tokens": %d, "bytes_in": 5, "shards": 1}}
                """.formatted("b".repeat(64), EOS, all.length, "c".repeat(64), "b".repeat(64), all.length);
        Path mp = new Path(dir, "manifest.json");
        try (FSDataOutputStream o = fs.create(mp, true)) {
            o.write(manifest.getBytes());
        }
        ShardException e = assertThrows(ShardException.class, () -> ShardStream.open(fs, mp));
        assertTrue(e.getMessage().contains("token-shard-1") && e.getMessage().contains("ouro reshard --manifest " + mp
                + " --output"), e.getMessage());
        Path out = new Path(tmp.toUri().toString(), "v2");
        Manifest n = Shards.rewrite(fs, mp, fs, out, 128, l -> { });
        assertEquals(300, n.shards().totalDocuments());
        try (ShardStream s = ShardStream.open(fs, new Path(out, "manifest.json"))) {
            int[] got = new int[all.length];
            s.read(0, got, 0, got.length);
            assertArrayEquals(all, got, "the same token stream");
        }
    }
}
