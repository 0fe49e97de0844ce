package io.ouro.tokenizer.job;

import io.ouro.tokenizer.shard.ShardReader;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The shards are standard Arrow IPC: Apache Arrow's JavaScript implementation (tests/arrow-js, installed
 * by .ci/run with npm ci) reads every shard and finds the documents, tokens and ids our reader finds, in
 * record batches of the configured token count (documents that cross a batch continue in the next row).
 */
class ArrowJsTokenizeJobTest {

    @TempDir
    Path tmp;

    @Test
    @Timeout(300)
    void arrowJsReadsTheShards() throws Exception {
        Path js = Path.of("..", "tests", "arrow-js").toAbsolutePath().normalize();
        assertTrue(Files.isDirectory(js.resolve("node_modules/apache-arrow")),
                "Arrow JS is not installed: run `npm ci --prefix tests/arrow-js` (.ci/run does)");
        Path data = Path.of("..", "..", "shared", "data").toAbsolutePath().normalize();
        Path in = Files.createDirectories(tmp.resolve("in"));
        Files.writeString(in.resolve("ru.txt"), Files.readString(data.resolve("corpora/fortunes-ru.txt")).substring(0, 200_000));
        SparkConf conf = new SparkConf().setMaster("local[2]").setAppName("arrow-js").set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1");
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            for (String tok : new String[] {"gpt2", "qwen3"}) {
                Path out = tmp.resolve("out-" + tok);
                TokenizeJob.run(jsc, new TokenizeJob.Options(in.toUri().toString(), "text", "text", "%",
                        data.resolve("tokenizers/" + tok + "/tokenizer.json").toUri().toString(), out.toUri().toString(),
                        "ru", 30_000, 1 << 20, -1, 256), System.out::println);
                JsonNode m = new ObjectMapper().readTree(out.resolve("manifest.json").toFile());
                FileSystem fs = FileSystem.getLocal(new Configuration());
                for (JsonNode s : m.path("shards")) {
                    Path shard = out.resolve(s.path("path").asText());
                    Process p = new ProcessBuilder("node", js.resolve("read-shard.mjs").toString(), shard.toString())
                            .redirectErrorStream(true).start();
                    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
                    String outText = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
                    assertEquals(0, p.exitValue(), outText);
                    JsonNode r = new ObjectMapper().readTree(outText);
                    ShardReader.Content c = ShardReader.read(fs, new org.apache.hadoop.fs.Path(shard.toUri()));
                    long sum = 0;
                    for (int t : c.tokens()) {
                        sum += t;
                    }
                    assertEquals(c.docStarts().length, r.path("docs").asLong(), shard.toString());
                    assertEquals(c.tokens().length, r.path("tokens").asLong());
                    assertEquals(Long.toString(sum), r.path("sum").asText());
                    assertTrue(r.path("endsWithEos").asBoolean());
                    assertEquals("token-shard-2", r.path("format").asText());
                    assertTrue(r.path("maxBatchTokens").asInt() == 256, "record batches of 256 tokens");
                    assertEquals(tok.equals("gpt2") ? "List<Uint16>" : "List<Int32>", r.path("type").asText());
                    System.out.println("Arrow JS read " + shard.getFileName() + " (" + tok + "): " + outText);
                }
            }
        }
    }
}
