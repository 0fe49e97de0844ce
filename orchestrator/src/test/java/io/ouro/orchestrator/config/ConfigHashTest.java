package io.ouro.orchestrator.config;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The run identity that guards resume is a function of the config's content: the same in separate JVMs
 * (hash-based collections iterate in a per-JVM order), the same for any split of the global batch over
 * workers, and different when anything that decides the weights differs.
 */
class ConfigHashTest {

    @TempDir
    Path tmp;

    static String yaml(int workers, int batch, double webWeight, long seed) {
        return """
                run: {name: hash-test, seed: %d}
                model: {preset: small, vocab: 61, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 2}
                data:
                  sources:
                    - {name: web, synthetic: {tokens: 4000}}
                    - {name: code, synthetic: {tokens: 3000}}
                    - {name: math, synthetic: {tokens: 2000}}
                    - {name: books, synthetic: {tokens: 1000}}
                train: {workers: %d, device: java}
                stages:
                  - {name: a, steps: 10, seq_len: 12, batch_per_worker: %d, mixture: {web: %s, code: 0.3, math: 0.2, books: 0.1}}
                  - {name: b, steps: 10, seq_len: 24, batch_per_worker: %d, mixture: {web: 0.5, code: 0.5}}
                """.formatted(seed, workers, batch, webWeight, batch);
    }

    /** Prints the hash of the config file named by the first argument (run in a child JVM). */
    public static void main(String[] args) {
        System.out.println("hash=" + TrainConfig.load(Path.of(args[0])).hash());
    }

    static String hashInAnotherJvm(Path file) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), ConfigHashTest.class.getName(),
                file.toString()).redirectErrorStream(true).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the child JVM exits");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), out);
        return out.lines().filter(l -> l.startsWith("hash=")).findFirst().orElseThrow().substring(5);
    }

    @Test
    @Timeout(300)
    void theHashOfAMultiSourceMixtureIsTheSameInSeparateJvms() throws Exception {
        Path file = tmp.resolve("mixture.yaml");
        Files.writeString(file, yaml(2, 3, 0.4, 7));
        String here = TrainConfig.load(file).hash();
        List<String> others = List.of(hashInAnotherJvm(file), hashInAnotherJvm(file), hashInAnotherJvm(file));
        System.out.println("config hash here " + here + ", in three other JVMs " + others);
        for (String h : others) {
            assertEquals(here, h, "hash computed in another JVM");
        }
    }

    @Test
    void theHashDependsOnTheGlobalBatchNotOnItsSplitOverWorkers() {
        String w2 = TrainConfig.parse("a.yaml", yaml(2, 3, 0.4, 7)).hash();
        assertEquals(w2, TrainConfig.parse("b.yaml", yaml(1, 6, 0.4, 7)).hash(), "W 1 x 6 = W 2 x 3");
        assertEquals(w2, TrainConfig.parse("c.yaml", yaml(3, 2, 0.4, 7)).hash(), "W 3 x 2 = W 2 x 3");
        assertNotEquals(w2, TrainConfig.parse("d.yaml", yaml(2, 2, 0.4, 7)).hash(), "another global batch");
        assertNotEquals(w2, TrainConfig.parse("e.yaml", yaml(2, 3, 0.5, 7)).hash(), "another mixture");
        assertNotEquals(w2, TrainConfig.parse("f.yaml", yaml(2, 3, 0.4, 8)).hash(), "another seed");
        assertNotEquals(w2, TrainConfig.parse("g.yaml", yaml(2, 3, 0.4, 7).replace("device: java}",
                "device: java, exchange_dtype: bf16}")).hash(), "gradients summed over a bf16 wire");
    }
}
