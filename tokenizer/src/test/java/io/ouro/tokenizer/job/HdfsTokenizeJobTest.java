package io.ouro.tokenizer.job;

import io.ouro.tokenizer.shard.ShardReader;
import io.ouro.tokenizer.shard.ShardStream;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.tokenizer.fs.HadoopFiles;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tokenization job on an in-process HDFS (MiniDFSCluster) with Spark local[2], on real text from the
 * shared corpora: round trip, determinism, resume after an injected failure, and bad records.
 */
class HdfsTokenizeJobTest {

    static MiniDFSCluster dfs;
    static FileSystem fs;
    static JavaSparkContext jsc;
    static String root;
    static final java.nio.file.Path DATA = java.nio.file.Path.of("..", "..", "shared", "data").toAbsolutePath().normalize();
    static final String GPT2 = DATA.resolve("tokenizers/gpt2/tokenizer.json").toUri().toString();
    static List<String> expectedDocs = new ArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        Configuration conf = new Configuration();
        java.nio.file.Path base = java.nio.file.Path.of("target", "minidfs-" + System.nanoTime()).toAbsolutePath();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, base.toString());
        for (String k : new String[] {"dfs.datanode.address", "dfs.datanode.http.address", "dfs.datanode.ipc.address",
                "dfs.namenode.http-address", "dfs.namenode.secondary.http-address"}) {
            conf.set(k, "127.0.0.1:0");
        }
        dfs = new MiniDFSCluster.Builder(conf, base.toFile()).numDataNodes(1).build();
        dfs.waitActive();
        fs = dfs.getFileSystem();
        root = "hdfs://127.0.0.1:" + dfs.getNameNodePort() + "/ouro";
        // three input files of real documents: fortunes in English, German, Russian (a slice of each)
        int f = 0;
        for (String corpus : new String[] {"fortunes-en.txt", "fortunes-de.txt", "fortunes-ru.txt"}) {
            List<String> docs = fortunes(corpus).subList(0, 150);
            StringBuilder text = new StringBuilder();
            for (String d : docs) {
                text.append(d).append("%\n");
                expectedDocs.add(d);
            }
            write(root + "/in/part-" + f++ + ".txt", text.toString().getBytes(StandardCharsets.UTF_8));
        }
        SparkConf sc = new SparkConf().setMaster("local[2]").setAppName("tokenize-test").set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1");
        jsc = new JavaSparkContext(sc);
    }

    @AfterAll
    static void stop() {
        if (jsc != null) {
            jsc.close();
        }
        if (dfs != null) {
            dfs.shutdown();
        }
    }

    static List<String> fortunes(String name) throws IOException {
        String text = Files.readString(DATA.resolve("corpora").resolve(name), StandardCharsets.UTF_8);
        List<String> docs = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (String line : text.split("\n", -1)) {
            if (line.equals("%")) {
                if (!cur.toString().isBlank()) {
                    docs.add(cur.toString());
                }
                cur.setLength(0);
            } else {
                cur.append(line).append('\n');
            }
        }
        return docs;
    }

    static void write(String uri, byte[] b) throws IOException {
        try (FSDataOutputStream o = fs.create(new Path(uri), true)) {
            o.write(b);
        }
    }

    static TokenizeJob.Options opts(String in, String format, String out, long shardTokens, int inject) {
        return new TokenizeJob.Options(in, format, "text", format.equals("text") ? "%" : null, GPT2, out, "fortunes",
                shardTokens, 4096, inject);
    }

    static Map<String, byte[]> files(String dir) throws IOException {
        Map<String, byte[]> m = new TreeMap<>();
        for (FileStatus s : fs.listStatus(new Path(dir))) {
            if (s.isFile()) {
                try (InputStream in = fs.open(s.getPath())) {
                    m.put(s.getPath().getName(), in.readAllBytes());
                }
            }
        }
        return m;
    }

    static JsonNode manifest(String dir) throws IOException {
        try (InputStream in = fs.open(new Path(dir, "manifest.json"))) {
            return new ObjectMapper().readTree(in);
        }
    }

    @Test
    @Timeout(300)
    void roundTripDeterminismAndResume() throws Exception {
        TokenizeJob.Summary a = TokenizeJob.run(jsc, opts(root + "/in", "text", root + "/out-a", 20_000, -1), System.out::println);
        assertEquals(450, a.documents());
        JsonNode m = manifest(root + "/out-a");
        assertEquals("uint16", m.path("token_type").asText());
        assertEquals(50256, m.path("eos_id").asInt());
        assertTrue(m.path("shards").size() > 3, "several shards: " + m.path("shards").size());

        // round trip: decoding the shards, in manifest order, gives back the input documents
        BpeTokenizer tok = BpeTokenizer.load(java.nio.file.Path.of(java.net.URI.create(GPT2)));
        List<String> decoded = new ArrayList<>();
        long tokens = 0;
        for (JsonNode s : m.path("shards")) {
            ShardReader.Content c = ShardReader.read(fs, new Path(root + "/out-a", s.path("path").asText()));
            assertEquals(s.path("tokens").asLong(), c.tokens().length);
            assertEquals(s.path("documents").asLong(), c.docStarts().length);
            tokens += c.tokens().length;
            for (int d = 0; d < c.docStarts().length; d++) {
                int start = (int) c.docStarts()[d];
                int end = d + 1 < c.docStarts().length ? (int) c.docStarts()[d + 1] : c.tokens().length;
                assertEquals(50256, c.tokens()[end - 1], "EOS closes every document");
                decoded.add(tok.decode(Arrays.copyOfRange(c.tokens(), start, end - 1)));
            }
        }
        assertEquals(expectedDocs, decoded, "decode(shards) == input documents, in order");
        assertEquals(m.path("totals").path("tokens").asLong(), tokens);
        assertEquals(tok.fingerprint(), m.path("tokenizer_sha256").asText());
        // the training reader's positioned reads give the same stream
        List<Integer> all = new ArrayList<>();
        for (JsonNode s : m.path("shards")) {
            for (int t : ShardReader.read(fs, new Path(root + "/out-a", s.path("path").asText())).tokens()) {
                all.add(t);
            }
        }
        try (ShardStream st = ShardStream.open(fs, new Path(root + "/out-a", "manifest.json"))) {
            int[] got = new int[(int) st.tokens()];
            st.read(0, got, 0, got.length);
            assertEquals(all, Arrays.stream(got).boxed().toList());
        }

        // determinism: a second run gives byte-identical shards and manifest
        TokenizeJob.run(jsc, opts(root + "/in", "text", root + "/out-b", 20_000, -1), System.out::println);
        Map<String, byte[]> fa = files(root + "/out-a"), fb = files(root + "/out-b");
        assertEquals(fa.keySet(), fb.keySet());
        for (String k : fa.keySet()) {
            assertArrayEquals(fa.get(k), fb.get(k), k + " is byte-identical");
        }

        // resume: a job that dies in unit 1 after its first shard leaves no manifest and no unit marker;
        // the re-run skips the finished units and ends byte-identical to the clean run
        String c = root + "/out-c";
        assertThrows(Exception.class, () -> TokenizeJob.run(jsc, opts(root + "/in", "text", c, 20_000, 1), System.out::println));
        assertFalse(fs.exists(new Path(c, "manifest.json")), "no manifest after a failed job");
        assertFalse(fs.exists(new Path(c, "_units/u00001.json")));
        for (FileStatus s : fs.listStatus(new Path(c))) {
            if (s.isFile()) {
                ShardReader.read(fs, s.getPath()); // whatever is visible is a complete, readable shard
            }
        }
        TokenizeJob.Summary resumed = TokenizeJob.run(jsc, opts(root + "/in", "text", c, 20_000, -1), System.out::println);
        assertTrue(resumed.skippedUnits() >= 1, "finished units are skipped: " + resumed.skippedUnits());
        Map<String, byte[]> fc = files(c);
        assertEquals(fa.keySet(), fc.keySet());
        for (String k : fa.keySet()) {
            assertArrayEquals(fa.get(k), fc.get(k), k + " after resume");
        }
        System.out.printf("tokenize job on MiniDFS: %d documents, %d shards; round trip, determinism and resume (%d unit(s)"
                + " skipped) verified%n", a.documents(), a.shards(), resumed.skippedUnits());
    }

    @Test
    void aShardCommittedFirstByAnotherAttemptIsKeptWhenItsBytesAreOurs() throws Exception {
        // HDFS's rename does not replace an existing file: a task of a killed job that is still running can
        // commit the same shard while the re-run writes it (seen in this test's resume case)
        Path dst = new Path(root + "/commit/s.arrow"), tmp = new Path(root + "/commit/_tmp/s.arrow.1");
        write(dst.toString(), new byte[] {1, 2, 3});
        write(tmp.toString(), new byte[] {1, 2, 3});
        HadoopFiles.commit(fs, tmp, dst);
        assertFalse(fs.exists(tmp), "our identical copy is dropped");
        assertArrayEquals(new byte[] {1, 2, 3}, fs.open(dst).readAllBytes());
        write(tmp.toString(), new byte[] {1, 2, 4});
        IOException e = assertThrows(IOException.class, () -> HadoopFiles.commit(fs, tmp, dst));
        assertTrue(e.getMessage().contains("another attempt wrote " + dst + " with other content"), e.getMessage());
    }

    @Test
    @Timeout(300)
    void badRecordsAreCountedNotFatal() throws Exception {
        String in = root + "/bad";
        // text: two good documents, one invalid UTF-8, one empty, one oversized (> 4096 bytes)
        java.io.ByteArrayOutputStream t = new java.io.ByteArrayOutputStream();
        t.writeBytes("a good document\n%\n".getBytes(StandardCharsets.UTF_8));
        t.writeBytes(new byte[] {'b', 'a', 'd', ' ', (byte) 0xC3, (byte) 0x28, '\n'});
        t.writeBytes("%\n   \n%\n".getBytes(StandardCharsets.UTF_8));
        t.writeBytes(("x".repeat(5000) + "\n%\nanother good one\n%\n").getBytes(StandardCharsets.UTF_8));
        write(in + "/a.txt", t.toByteArray());
        TokenizeJob.Summary s = TokenizeJob.run(jsc, opts(in, "text", root + "/bad-out", 1 << 20, -1), System.out::println);
        assertEquals(2, s.documents());
        assertEquals(Map.of("invalid_utf8", 1L, "empty", 1L, "oversized", 1L), s.bad());

        // jsonl: malformed lines, a missing field, a non-string field, an empty text, two good records
        String jl = """
                {"text": "first good record"}
                {"text": "broken
                not json at all
                {"body": "no text field"}
                {"text": 42}
                {"text": ""}
                {"text": "second good record", "id": 7}
                """;
        write(in + "-jsonl/b.jsonl", jl.getBytes(StandardCharsets.UTF_8));
        TokenizeJob.Summary j = TokenizeJob.run(jsc, opts(in + "-jsonl", "jsonl", root + "/bad-jsonl", 1 << 20, -1),
                System.out::println);
        assertEquals(2, j.documents());
        assertEquals(Map.of("malformed_json", 2L, "missing_field", 2L, "empty", 1L), j.bad());
        JsonNode m = manifest(root + "/bad-jsonl");
        assertEquals(2, m.path("bad_records").path("malformed_json").asInt());
        assertTrue(m.path("bad_record_samples").path("malformed_json").get(0).asText().endsWith("b.jsonl:30"),
                "samples name file and byte offset: " + m.path("bad_record_samples"));
    }
}
