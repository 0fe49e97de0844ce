package io.ouro.orchestrator.train;

import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.model.ParamLayout;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loss or gradient-norm spikes and non-finite values skip the update on every rank alike. */
class StabilityCurriculumTest {

    @TempDir
    Path tmp;

    @Test
    void spikesAndNonFiniteValuesAreDetected() {
        SpikeGuard g = new SpikeGuard(10, 5, 4.0, 10, "a");
        for (int i = 0; i < 8; i++) {
            assertNull(g.check(3.0 + 0.01 * (i % 3), 1.0 + 0.05 * (i % 2)));
        }
        assertTrue(g.check(9.0, 1.0).startsWith("loss spike: 9.000 > "), "a loss jump is a spike");
        assertTrue(g.check(3.0, 50.0).startsWith("grad norm spike"));
        assertTrue(g.check(Double.NaN, 1.0).startsWith("non-finite"));
        assertNull(g.check(3.01, 1.02), "normal steps go on");
        SpikeGuard copy = new SpikeGuard(10, 5, 4.0, 10, null);
        copy.restore(g.save());
        assertEquals(g.save(), copy.save(), "the history survives a checkpoint");
        assertNotNull(copy.check(9.0, 1.0), "and decides alike after it");
        copy.enterStage("b");
        assertNull(copy.check(9.0, 1.0), "a new stage starts a new history");
    }

    @Test
    void aLastingNewLevelIsAcceptedAfterMaxConsecutiveSpikes() {
        SpikeGuard g = new SpikeGuard(10, 5, 4.0, 3, "a");
        for (int i = 0; i < 8; i++) {
            assertNull(g.check(3.0, 1.0 + 0.05 * (i % 2)));
        }
        for (int i = 0; i < 3; i++) {
            assertNotNull(g.check(3.0, 10.0), "spike " + (i + 1) + " of 3 is skipped");
            assertNull(g.takeNote());
        }
        SpikeGuard copy = new SpikeGuard(10, 5, 4.0, 3, null);
        copy.restore(g.save());
        assertNull(g.check(3.0, 10.0), "the fourth in a row is accepted: skipping leaves the gradient where it was");
        assertTrue(g.takeNote().startsWith("accepted after 3 consecutive spikes"));
        assertNull(g.takeNote(), "a note is told once");
        assertNull(copy.check(3.0, 10.0), "the count of spikes in a row survives a checkpoint");
        for (int i = 0; i < 6; i++) {
            assertNull(g.check(3.0, 10.0 + 0.1 * (i % 2)), "the new level is the history now");
        }
        assertNotNull(g.check(3.0, 1000.0), "and spikes above it are skipped again");
        SpikeGuard never = new SpikeGuard(10, 5, 4.0, 0, "a");
        for (int i = 0; i < 8; i++) {
            never.check(3.0, 1.0 + 0.05 * (i % 2));
        }
        assertNull(never.check(3.0, 10.0), "max_consecutive 0 accepts every spike as a new level");
    }

    @Test
    @Timeout(300)
    void aNonFiniteLossOnOneRankSkipsTheUpdateOnAll() throws Exception {
        TrainConfig cfg = TrainConfig.parse("nan.yaml", """
                run: {name: nan-test, seed: 4, out: "%s"}
                model: {preset: small, vocab: 41, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 2}
                data: {synthetic: {tokens: 5000}}
                train: {workers: 2, device: java, batch_per_worker: 2, seq_len: 8, steps: 8, segment_steps: 8,
                        lr: 0.003, timeout_s: 30, inject_nonfinite_at_step: 5}
                """.formatted(tmp.toUri()));
        SparkConf conf = LocalSpark.conf(cfg);
        StringBuilder log = new StringBuilder();
        Trainer.Result r;
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            r = new Trainer(jsc, cfg, l -> {
                System.out.println(l);
                log.append(l).append('\n');
            }).run(true);
        }
        // rank 0 computed a finite loss itself; it skips because rank 1 reported a non-finite one
        assertEquals("non-finite loss on 1 rank(s)", r.steps().get(5).skipped());
        for (int s = 0; s < 8; s++) {
            if (s != 5) {
                assertNull(r.steps().get(s).skipped(), "step " + s);
            }
        }
        assertTrue(log.toString().contains("1 skipped updates"), log.toString());
        CheckpointStore store = new CheckpointStore(tmp.toUri().toString(), 3, new org.apache.hadoop.conf.Configuration());
        assertEquals(7, store.load(8, new ParamLayout(cfg.stages().get(0).model()), cfg.hash()).optimizer().step(),
                "7 of 8 steps updated the weights");
    }
}
