package io.ouro.orchestrator.hf;

import io.ouro.orchestrator.PretrainApp;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.ConfigException;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.train.Trainer;
import io.ouro.worker.hf.HfModelDir;
import io.ouro.worker.hf.Safetensors;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Upcycling;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ouro export} of a trained run's checkpoint gives exactly its weights, and {@code model.init_from} starts a
 * run from the exported directory: in a first stage that upcycles to twice the layers and runs another T, a step at
 * learning rate 0 leaves exactly the upcycled exported weights.
 */
class InitFromExportTest {

    @TempDir
    Path tmp;

    static final String TRAIN = """
            run: {name: export-a, seed: 3, out: "%s"}
            model: {preset: small, vocab: 53, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 3}
            data: {sources: [{name: arith, synthetic: {tokens: 4000, seed: 1}}]}
            train: {workers: 1, device: java, segment_steps: 4, checkpoint_every: 4, timeout_s: 60}
            stages:
              - {name: a, steps: 4, seq_len: 8, batch_per_worker: 2, lr: {peak: 0.01}}
            """;

    static final String CONTINUE = """
            run: {name: export-b, seed: 3, out: "%s"}
            model: {init_from: "%s", recurrent_steps: 2}
            data: {sources: [{name: arith, synthetic: {tokens: 4000, seed: 1}}]}
            train: {workers: 1, device: java, segment_steps: 1, checkpoint_every: 1, timeout_s: 60}
            stages:
              - {name: b, steps: 1, seq_len: 8, batch_per_worker: 2, lr: {peak: 0.0}, upcycle: {layers: 2, mode: tile}}
            """;

    @Test
    @Timeout(300)
    void exportGivesTheCheckpointsWeightsAndInitFromStartsFromThem() throws Exception {
        Configuration conf = new Configuration();
        Path cfgA = tmp.resolve("a.yaml");
        java.nio.file.Files.writeString(cfgA, TRAIN.formatted(tmp.resolve("a").toUri()));
        TrainConfig a = TrainConfig.load(cfgA);
        train(a);
        CheckpointStore.Checkpoint ckpt = new CheckpointStore(a.run().out(), 1, conf).load(4,
                new ParamLayout(a.model()), a.hash());

        String exported = tmp.resolve("hf").toString();
        String said = HfExportApp.export(cfgA.toString(), null, exported, Safetensors.Dtype.F32, null, 256, conf);
        assertTrue(said.contains("step-0000000004"), said);
        HfModelDir.Model back = HfModelDir.read(HfModelDir.local(Path.of(exported)), a.model());
        assertEquals(a.model(), back.config());
        assertArrayEquals(ckpt.params(), back.params());

        TrainConfig b = TrainConfig.parse("b.yaml", CONTINUE.formatted(tmp.resolve("b").toUri(), exported));
        LoopConfig mb = b.stages().get(0).model();
        assertEquals(2, mb.layers());
        assertEquals(2, mb.steps());
        assertNotEquals(a.hash(), b.hash());
        train(b);
        float[] after = new CheckpointStore(b.run().out(), 1, conf).load(1, new ParamLayout(mb), b.hash()).params();
        float[] upcycled = Upcycling.map(new ParamLayout(a.model()), new ParamLayout(mb), ckpt.params(), "tile");
        assertArrayEquals(upcycled, after);
    }

    @Test
    void initFromChecksTheModelAgainstTheDirectory() throws Exception {
        LoopConfig m = new LoopConfig(53, 16, 1, 2, 24, 3, 10_000, 1e-6, 0.1, 0.02, 1);
        Path dir = tmp.resolve("hf");
        HfModelDir.write(HfModelDir.local(dir), m, new float[new ParamLayout(m).arraySize()], Safetensors.Dtype.BF16, 64,
                null, java.util.Map.of());
        String yaml = CONTINUE.formatted(tmp.resolve("b").toUri(), dir).replace("recurrent_steps: 2", "hidden: 32, recurrent_steps: 2");
        ConfigException e = assertThrows(ConfigException.class, () -> TrainConfig.parse("b.yaml", yaml));
        assertTrue(e.getMessage().contains("b.yaml: model.hidden: init_from's model has 16"), e.getMessage());
        String missing = CONTINUE.formatted(tmp.resolve("b").toUri(), tmp.resolve("nowhere"));
        e = assertThrows(ConfigException.class, () -> TrainConfig.parse("b.yaml", missing));
        assertTrue(e.getMessage().contains("model.init_from: expected an HF Ouro model directory"), e.getMessage());
    }

    private static void train(TrainConfig cfg) throws Exception {
        try (JavaSparkContext jsc = new JavaSparkContext(PretrainApp.sparkConf(cfg).setMaster("local[2]")
                .set("spark.ui.enabled", "false").set("spark.driver.host", "127.0.0.1")
                .set("spark.driver.bindAddress", "127.0.0.1"))) {
            new Trainer(jsc, cfg, System.out::println).run(false);
        }
    }
}
