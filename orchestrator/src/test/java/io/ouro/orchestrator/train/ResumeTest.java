package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Exact resume: a run that fails part-way (a task failure re-run by the driver, or the driver itself
 * dying and being restarted with resume) ends with weights bit-identical to an uninterrupted run.
 */
class ResumeTest {

    @TempDir
    Path tmp;

    static TrainConfig config(Path out, long injectAt) {
        return config(out, injectAt, "");
    }

    static TrainConfig config(Path out, long injectAt, String extra) {
        return TrainConfig.parse("resume.yaml", """
                run: {name: resume-test, seed: 5, out: "%s"}
                model: {preset: small, vocab: 61, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 2}
                data: {synthetic: {tokens: 8000}}
                train:
                  workers: 2
                  device: java
                  batch_per_worker: 2
                  seq_len: 12
                  steps: 10
                  segment_steps: 4
                  checkpoint_every: 4
                  keep_checkpoints: 2
                  lr: 0.003
                  timeout_s: 30
                  inject_failure_at_step: %d
                  retry: {backoff_s: 0}
                %s""".formatted(out.toUri(), injectAt, extra));
    }

    static Trainer.Result train(TrainConfig cfg, boolean resume, Consumer<String> log) {
        SparkConf conf = LocalSpark.conf(cfg);
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            return new Trainer(jsc, cfg, log).run(true, resume);
        }
    }

    @Test
    @Timeout(300)
    void interruptedRunsEndBitIdenticalToAnUninterruptedOne() {
        Trainer.Result whole = train(config(tmp.resolve("a"), -1), false, System.out::println);
        float[] expected = whole.parameters();

        // a task fails at step 6: the driver re-runs segment 4-7 from the checkpoint of step 4
        StringBuilder log = new StringBuilder();
        Trainer.Result retried = train(config(tmp.resolve("b"), 6), false, l -> {
            System.out.println(l);
            log.append(l).append('\n');
        });
        assertTrue(log.toString().contains("segment 4–7 failed (failure 1 of at most 8 per 1000 committed steps)"), "the failure happened: " + log);
        assertTrue(log.toString().contains("re-running from step 4 (checkpoint)"), log.toString());
        assertArrayEquals(expected, retried.parameters(), "weights after a re-run segment");
        assertEquals(10, retried.steps().size());

        // the driver dies once the checkpoint of step 8 is committed; a new driver resumes
        TrainConfig c = config(tmp.resolve("c"), -1);
        assertThrows(DriverKilled.class, () -> train(c, false, l -> {
            System.out.println(l);
            if (l.startsWith("checkpoint of step 8 committed")) {
                throw new DriverKilled();
            }
        }));
        StringBuilder log2 = new StringBuilder();
        Trainer.Result resumed = train(c, true, l -> {
            System.out.println(l);
            log2.append(l).append('\n');
        });
        assertTrue(log2.toString().contains("resume: continuing after the checkpoint of step 8"), log2.toString());
        assertEquals(2, resumed.steps().size(), "only steps 8 and 9 run again");
        assertTrue(log2.toString().contains("state checkpoint"), "tasks loaded the checkpoint: " + log2);
        assertArrayEquals(expected, resumed.parameters(), "weights after the driver was restarted");
        System.out.println("resume: weights bit-identical to the uninterrupted run after a task failure and after"
                + " a driver restart (" + expected.length + " parameters)");
    }

    /**
     * Checkpoints by wall time: with {@code checkpoint_every_minutes} so small that every interval is over after a
     * step, the driver runs one step to measure it, then one-step segments each ending with a checkpoint, at steps
     * that are no multiple of {@code checkpoint_every}; a failure goes back to the newest of them, and the weights end
     * bit-identical to the uninterrupted run with the planned segments.
     */
    @Test
    @Timeout(300)
    void wallTimeCheckpointsKeepTheRunBitIdentical() {
        float[] expected = train(config(tmp.resolve("a"), -1), false, System.out::println).parameters();
        StringBuilder log = new StringBuilder();
        Trainer.Result timed = train(config(tmp.resolve("t"), 6, "  checkpoint_every_minutes: 0.000001\n"), false,
                l -> {
                    System.out.println(l);
                    log.append(l).append('\n');
                });
        String text = log.toString();
        assertTrue(text.contains("checkpoint of step 3 committed"), "a checkpoint by time at step 3: " + text);
        assertTrue(text.contains("segment 6–6 failed"), text);
        assertTrue(text.contains("re-running from step 6 (checkpoint)"), text);
        assertEquals(10, timed.steps().size());
        assertArrayEquals(expected, timed.parameters(), "weights with checkpoints by wall time and a re-run");
    }

    /**
     * {@code train.inject}: the checkpoint of step 4 fails to write, a task fails at step 5 (so the run goes back to
     * step 0), and the final checkpoint (step 10) fails to write (so the last segment runs again from step 8); each
     * fault fires once, the run ends with its final checkpoint committed and weights bit-identical to an
     * uninterrupted run.
     */
    @Test
    @Timeout(300)
    void injectedFaultsFireOnceAndAFailedFinalCheckpointIsWrittenAgain() throws Exception {
        float[] expected = train(config(tmp.resolve("a"), -1), false, System.out::println).parameters();
        StringBuilder log = new StringBuilder();
        Path out = tmp.resolve("f");
        Trainer.Result faulty = train(config(out, -1, "  inject: {task_failure_at_steps: [5],"
                + " checkpoint_write_failure_at_steps: [4, 10]}\n"), false, l -> {
                    System.out.println(l);
                    log.append(l).append('\n');
                });
        String text = log.toString();
        assertTrue(text.contains("warning: checkpoint of step 4 not committed, a shard write failed"), text);
        assertTrue(text.contains("segment 4–7 failed (failure 1 of"), text);
        assertTrue(text.contains("re-running from step 0 (no checkpoint yet)"), text);
        assertTrue(text.contains("the checkpoint of the last step 10 was not committed"), text);
        assertTrue(text.contains("re-running from step 8 (checkpoint)"), text);
        assertTrue(text.contains("checkpoint of step 10 committed"), text);
        for (String marker : new String[] {"task-failure-5", "checkpoint-write-failure-4", "checkpoint-write-failure-10"}) {
            assertTrue(java.nio.file.Files.exists(out.resolve("inject").resolve(marker)), marker);
        }
        assertEquals(2, text.split(" failed \\(failure ", -1).length - 1, "each fault fired once: " + text);
        assertArrayEquals(expected, faulty.parameters(), "weights after the injected faults");
    }

    static final class DriverKilled extends RuntimeException {
    }
}
