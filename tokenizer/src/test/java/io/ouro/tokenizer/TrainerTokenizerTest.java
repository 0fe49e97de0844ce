package io.ouro.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The BPE trainer as a Spark job (local[2]) on a real corpus: the tokenizer.json it writes loads in HF
 * tokenizers and gives the same ids as ours on held-out documents, and compresses better than bytes.
 */
class TrainerTokenizerTest {

    @TempDir
    Path tmp;

    @Test
    @Timeout(300)
    void trainedTokenizerLoadsInHfAndAgreesWithOurs() throws Exception {
        List<String> docs = Corpora.fortunes("fortunes-en.txt");
        Path in = Files.createDirectories(tmp.resolve("in"));
        Files.writeString(in.resolve("a.txt"), String.join("\n", docs.subList(0, 3000)));
        Files.writeString(in.resolve("b.txt"), String.join("\n", docs.subList(3000, 6000)));
        SparkConf conf = new SparkConf().setMaster("local[2]").setAppName("bpe-train").set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1");
        byte[] json;
        long t0 = System.nanoTime();
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            json = BpeTrainer.train(jsc, in.toUri().toString(), 800, List.of("<|endoftext|>"), 2);
        }
        double sec = (System.nanoTime() - t0) / 1e9;
        byte[] again;
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            again = BpeTrainer.train(jsc, in.toUri().toString(), 800, List.of("<|endoftext|>"), 2);
        }
        assertArrayEquals(json, again, "training is deterministic");
        Path file = tmp.resolve("tokenizer.json");
        Files.write(file, json);
        BpeTokenizer ours = BpeTokenizer.load(file);
        assertEquals(800, ours.vocabSize());
        assertEquals(799, ours.eosId());
        List<String> heldOut = docs.subList(6000, 7000);
        long ids = 0, bytes = 0;
        try (HuggingFaceTokenizer hf = HuggingFaceTokenizer.builder().optTokenizerPath(file).optAddSpecialTokens(false)
                .optTruncation(false).optPadding(false).build()) {
            int same = 0;
            for (String d : heldOut) {
                int[] o = ours.encode(d);
                long[] h = hf.encode(d, false, false).getIds();
                same += Arrays.equals(Arrays.stream(h).mapToInt(x -> (int) x).toArray(), o) ? 1 : 0;
                assertEquals(d, ours.decode(o));
                ids += o.length;
                bytes += d.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
            }
            System.out.printf("trained BPE (800 ids, %.1f s on local[2]): HF tokenizers gives the same ids on %d/%d"
                    + " held-out documents; %.2f bytes per token%n", sec, same, heldOut.size(), (double) bytes / ids);
            assertEquals(heldOut.size(), same);
        }
        assertTrue((double) bytes / ids > 2.0, "merges compress the text: " + (double) bytes / ids + " bytes per token");
    }
}
