package io.ouro.tokenizer.job;

import io.ouro.tokenizer.shard.ShardReader;
import io.ouro.tokenizer.BpeTokenizer;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.io.api.Binary;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Parquet input: one document per row of the string column; a null or invalid UTF-8 row is a bad record. */
class ParquetTokenizeJobTest {

    @TempDir
    Path tmp;

    @Test
    @Timeout(120)
    void parquetRowsAreDocuments() throws Exception {
        MessageType schema = MessageTypeParser.parseMessageType(
                "message doc { optional binary text (UTF8); required int32 id; }");
        org.apache.hadoop.fs.Path file = new org.apache.hadoop.fs.Path(tmp.resolve("in/part-0.parquet").toUri());
        List<String> good = List.of("The first row.", "Zweite Zeile mit Umlauten: äöü ß.", "Третья строка.");
        SimpleGroupFactory f = new SimpleGroupFactory(schema);
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(file).withType(schema).withConf(new Configuration()).build()) {
            int id = 0;
            for (String s : good) {
                w.write(f.newGroup().append("text", s).append("id", id++));
            }
            w.write(f.newGroup().append("id", id++)); // null text
            w.write(f.newGroup().append("text", Binary.fromConstantByteArray(new byte[] {(byte) 0xFF, 'x'})).append("id", id++));
            w.write(f.newGroup().append("text", "  ").append("id", id));
        }
        Path data = Path.of("..", "..", "shared", "data").toAbsolutePath().normalize();
        SparkConf conf = new SparkConf().setMaster("local[2]").setAppName("parquet").set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1");
        String tok = data.resolve("tokenizers/qwen3/tokenizer.json").toUri().toString();
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            TokenizeJob.Summary s = TokenizeJob.run(jsc, new TokenizeJob.Options(tmp.resolve("in").toUri().toString(),
                    "parquet", "text", null, tok, tmp.resolve("out").toUri().toString(), "pq", 1 << 20, 1 << 20, -1),
                    System.out::println);
            assertEquals(3, s.documents());
            assertEquals(Map.of("missing_field", 1L, "invalid_utf8", 1L, "empty", 1L), s.bad());
        }
        ShardReader.Content c = ShardReader.read(FileSystem.getLocal(new Configuration()),
                new org.apache.hadoop.fs.Path(tmp.resolve("out/pq-u00000-0000.arrow").toUri()));
        BpeTokenizer t = BpeTokenizer.load(data.resolve("tokenizers/qwen3/tokenizer.json"));
        List<String> back = new ArrayList<>();
        for (int d = 0; d < c.docStarts().length; d++) {
            int a = (int) c.docStarts()[d], e = d + 1 < c.docStarts().length ? (int) c.docStarts()[d + 1] : c.tokens().length;
            back.add(t.decode(Arrays.copyOfRange(c.tokens(), a, e - 1)));
        }
        assertEquals(good, back);
    }
}
