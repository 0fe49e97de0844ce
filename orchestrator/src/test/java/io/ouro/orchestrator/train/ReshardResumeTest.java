package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A checkpoint written by W = 2 workers resumes with W = 1 and with W = 3 (the same global batch of 6
 * sequences, split differently): each rank reads the state from the two shards whatever its own W. The
 * resumed runs end within the tolerance of a run that used that W from the start: steps 0-3 ran with W = 2,
 * whose all-reduce sums the gradients in another order than W = 1 or 3 (DataParallelTest's tolerance, 1e-5). With
 * the optimizer sharded (ZeRO-1) each rank wrote the moments of its own slice, and the resumed ranks take theirs,
 * cut for the new W, from the shards.
 */
class ReshardResumeTest {

    static final double TOLERANCE = 1e-5;

    @TempDir
    Path tmp;

    static TrainConfig config(Path out, int workers, int batch) {
        return config(out, workers, batch, false);
    }

    static TrainConfig config(Path out, int workers, int batch, boolean shard) {
        return TrainConfig.parse("reshard.yaml", """
                run: {name: reshard-test, seed: 5, out: "%s"}
                model: {preset: small, vocab: 61, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 2}
                data: {synthetic: {tokens: 8000}}
                train:
                  workers: %d
                  device: java
                  batch_per_worker: %d
                  seq_len: 12
                  steps: 8
                  segment_steps: 4
                  checkpoint_every: 4
                  lr: 0.003
                  timeout_s: 30
                  shard_optimizer: %s
                """.formatted(out.toUri(), workers, batch, shard));
    }

    static Trainer.Result train(TrainConfig cfg, boolean resume, Consumer<String> log) {
        var conf = LocalSpark.conf(cfg).setMaster("local[" + cfg.train().workers() + "]");
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            return new Trainer(jsc, cfg, log).run(true, resume);
        }
    }

    static double maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }

    static void copy(Path from, Path to) throws IOException {
        try (var files = Files.walk(from)) {
            for (Path p : files.toList()) {
                Path q = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(q);
                } else {
                    Files.copy(p, q);
                }
            }
        }
    }

    @ParameterizedTest(name = "shard_optimizer {0}")
    @ValueSource(booleans = {false, true})
    @Timeout(600)
    void aCheckpointOfTwoWorkersResumesWithOneAndWithThree(boolean shard) throws IOException {
        Path out = tmp.resolve("w2");
        TrainConfig two = config(out, 2, 3, shard);
        assertEquals(two.hash(), config(out, 1, 6, shard).hash(), "the run identity does not depend on W");
        assertThrows(StopHere.class, () -> train(two, false, l -> {
            System.out.println(l);
            if (l.startsWith("checkpoint of step 4 committed")) {
                throw new StopHere();
            }
        }));
        copy(out, tmp.resolve("w2-copy"));

        for (int w : new int[] {1, 3}) {
            Trainer.Result whole = train(config(tmp.resolve("whole-" + w), w, 6 / w, shard), false, System.out::println);
            Path dir = w == 1 ? out : tmp.resolve("w2-copy");
            StringBuilder log = new StringBuilder();
            Trainer.Result resumed = train(config(dir, w, 6 / w, shard), true, l -> {
                System.out.println(l);
                log.append(l).append('\n');
            });
            assertTrue(log.toString().contains("resume: continuing after the checkpoint of step 4"), log.toString());
            assertTrue(log.toString().contains("state checkpoint"), "every rank loaded the checkpoint: " + log);
            assertEquals(4, resumed.steps().size(), "steps 4-7 run again");
            double d = maxDiff(whole.parameters(), resumed.parameters());
            double loss = 0;
            for (int k = 0; k < 4; k++) {
                double a = whole.steps().get(4 + k).loss(), b = resumed.steps().get(k).loss();
                loss = Math.max(loss, Math.abs(a - b) / Math.abs(a));
            }
            System.out.printf("reshard%s: written with W = 2, resumed with W = %d: parameters within %.2e, losses of"
                    + " steps 4-7 within %.2e (relative) of a run with W = %d throughout%n", shard ? " (ZeRO-1)" : "", w,
                    d, loss, w);
            assertTrue(d <= TOLERANCE, "parameters differ by " + d);
            assertTrue(loss <= TOLERANCE, "losses differ by " + loss);
        }
    }

    static final class StopHere extends RuntimeException {
    }
}
