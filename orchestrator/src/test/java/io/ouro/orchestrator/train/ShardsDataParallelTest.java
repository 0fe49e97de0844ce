package io.ouro.orchestrator.train;

import io.ouro.orchestrator.PretrainApp;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.tokenizer.job.TokenizeJob;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Training reads the tokenization job's shards through the manifest; a corrupt shard is a clear error. */
class ShardsDataParallelTest {

    @TempDir
    Path tmp;

    @Test
    @Timeout(300)
    void trainsFromShardsAndRefusesACorruptOne() throws Exception {
        Path data = Path.of("..", "..", "shared", "data").toAbsolutePath().normalize();
        Path in = Files.createDirectories(tmp.resolve("in"));
        String text = Files.readString(data.resolve("corpora/fortunes-en.txt"));
        Files.writeString(in.resolve("en.txt"), text.substring(0, 60_000));
        SparkConf conf = new SparkConf().setMaster("local[2]").setAppName("shards").set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1")
                .set("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
                .set("spark.kryo.registrator", io.ouro.orchestrator.OuroKryoRegistrator.class.getName());
        String manifest = tmp.resolve("shards/manifest.json").toUri().toString();
        TrainConfig cfg = TrainConfig.parse("shards.yaml", """
                run: {name: shards-test, seed: 2}
                model: {preset: small, vocab: 50257, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 2}
                data: {manifest: "%s"}
                train: {workers: 2, device: java, batch_per_worker: 2, seq_len: 16, steps: 4, segment_steps: 4, timeout_s: 30}
                """.formatted(manifest));
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            TokenizeJob.run(jsc, new TokenizeJob.Options(in.toUri().toString(), "text", "text", "%",
                    data.resolve("tokenizers/gpt2/tokenizer.json").toUri().toString(), tmp.resolve("shards").toUri().toString(),
                    "fortunes", 4000, 1 << 20, -1), System.out::println);
            Trainer.Result r = new Trainer(jsc, cfg, System.out::println).run(false);
            assertEquals(4, r.steps().size());
            assertTrue(r.steps().stream().allMatch(m -> Double.isFinite(m.loss()) && m.loss() > 5), "GPT-2 vocab losses");

            // flip a byte in one shard: the run stops with an error that names the file
            Path shard;
            try (var s = Files.list(tmp.resolve("shards"))) {
                shard = s.filter(p -> p.toString().endsWith("-0000.arrow")).findFirst().orElseThrow();
            }
            try (RandomAccessFile f = new RandomAccessFile(shard.toFile(), "rw")) {
                f.seek(f.length() / 2);
                int b = f.read();
                f.seek(f.length() / 2);
                f.write(b ^ 0x40);
            }
            DataSourcesReset.clear();
            Exception e = assertThrows(Exception.class, () -> new Trainer(jsc, cfg, System.out::println).run(false));
            Throwable t = e;
            String all = "";
            while (t != null) {
                all += t.getMessage() + "\n";
                t = t.getCause();
            }
            // the record batch's CRC32C, or the local filesystem's own checksum, names the file
            assertTrue(all.contains(shard.getFileName().toString())
                    && (all.contains("CRC32C") || all.contains("Checksum error")), all);
        }
    }
}
