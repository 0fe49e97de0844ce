package io.ouro.orchestrator.train;

import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.model.Upcycling;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The driver performs every kind of transition between curriculum stages. */
class CurriculumTest {

    @TempDir
    Path tmp;

    static final String CONFIG = """
            run: {name: curriculum-test, seed: 3, out: "%s"}
            model: {preset: small, vocab: 53, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 3}
            data:
              sources:
                - {name: arith, synthetic: {tokens: 6000, seed: 1}}
                - {name: other, synthetic: {tokens: 100, seed: 2}}
            train: {workers: 2, device: java, segment_steps: 4, checkpoint_every: 4, keep_checkpoints: 10, timeout_s: 30}
            stages:
              - name: a
                steps: 6
                seq_len: 8
                batch_start: 1
                batch_per_worker: 2
                ramp_steps: 4
                lr: {peak: 0.004, warmup_steps: 2, schedule: constant}
                mixture: {arith: 1}
              - name: b
                steps: 5
                seq_len: 12
                batch_per_worker: 2
                recurrent_steps: 2
                beta: 0.05
                rope_base: 40000
                upcycle: {layers: 2, mode: interleave}
                lr: {peak: 0.003, schedule: cosine, min_ratio: 0.1}
                mixture: {arith: 0.5, other: 0.5}
              - name: gate
                steps: 3
                seq_len: 12
                batch_per_worker: 2
                objective: stage2
                lr: {peak: 0.01, schedule: wsd, decay_fraction: 0.5}
            """;

    @Test
    @Timeout(300)
    void everyTransitionKindRunsAndDoesWhatItSays() throws Exception {
        TrainConfig cfg = TrainConfig.parse("curriculum.yaml", CONFIG.formatted(tmp.toUri()));
        assertEquals(14, cfg.totalSteps());
        assertEquals(1, cfg.stages().get(0).batchAt(0));
        assertEquals(2, cfg.stages().get(0).batchAt(4));
        List<String> log = new ArrayList<>();
        SparkConf conf = LocalSpark.conf(cfg);
        Trainer.Result r;
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            r = new Trainer(jsc, cfg, l -> {
                System.out.println(l);
                log.add(l);
            }).run(true);
        }
        String all = String.join("\n", log);
        assertEquals(14, r.steps().size());
        // stage a: batch ramp 1 -> 2 sequences per worker, as segments of constant batch
        assertEquals(2 * 1 * 8, r.steps().get(0).tokens());
        assertEquals(2 * 2 * 8, r.steps().get(5).tokens());
        // stage b: every change logged, and applied
        assertTrue(all.contains("stage b begins at step 6: sequence length 8 -> 12"), all);
        for (String change : new String[] {"recurrent steps 3 -> 2", "beta 0.1 -> 0.05", "RoPE base 10000 -> 40000",
                "layers 1 -> 2 (upcycled by interleave", "lr constant", "mixture {arith 100.0%} -> {arith 50.0%, other 50.0%}"}) {
            assertTrue(all.contains(change), "logged: " + change);
        }
        assertEquals(2 * 2 * 12, r.steps().get(6).tokens());
        assertEquals(2, r.steps().get(6).stepCe().length, "T = 2 in stage b");
        assertTrue(all.contains("state moved from a/"), "the backend moved to the new shape at the transition");
        assertTrue(all.contains("objective Stage II: LM frozen, only the exit gate trains"), all);
        // the small source runs out in stage b and wraps, which is logged
        assertTrue(all.contains("data: source other (stage b) has been read 1 time(s) through"), all);
        // LR: warm-up then constant in a, cosine in b, WSD in c
        assertEquals(0.002, r.steps().get(0).lr(), 1e-12);
        assertEquals(0.004, r.steps().get(3).lr(), 1e-12);
        assertEquals(0.003, r.steps().get(6).lr(), 1e-12);
        assertTrue(r.steps().get(10).lr() < 0.0015, "cosine decays: " + r.steps().get(10).lr());
        assertEquals(0.01, r.steps().get(11).lr(), 1e-12);
        assertTrue(r.steps().get(13).lr() < 0.01, "WSD decays at the end");

        // Stage II changed the gate and nothing else: compare with the checkpoint at the end of stage b
        LoopConfig mb = cfg.stages().get(1).model();
        ParamLayout lb = new ParamLayout(mb);
        CheckpointStore store = new CheckpointStore(tmp.toUri().toString(), 10, new org.apache.hadoop.conf.Configuration());
        assertTrue(store.steps().contains(6L) && store.steps().contains(11L), "checkpoints at stage ends: " + store.steps());
        float[] endB = store.load(11, lb, cfg.hash()).params();
        float[] end = r.parameters();
        boolean gateMoved = false;
        for (TensorView t : lb.tensors()) {
            float[] a = java.util.Arrays.copyOfRange(endB, t.off(), t.off() + (int) t.size());
            float[] b = java.util.Arrays.copyOfRange(end, t.off(), t.off() + (int) t.size());
            if (lb.isGate(t)) {
                gateMoved |= !java.util.Arrays.equals(a, b);
            } else {
                assertArrayEquals(a, b, t.name() + " is frozen in Stage II");
            }
        }
        assertTrue(gateMoved, "the exit gate trains in Stage II");
    }

    @Test
    void upcyclingTilesOrInterleavesLayers() {
        LoopConfig two = new LoopConfig(11, 4, 2, 2, 6, 2, 10_000, 1e-6, 0.1, 0.02, 1);
        ParamLayout from = new ParamLayout(two), to = new ParamLayout(two.withLayers(4));
        float[] src = new float[from.arraySize()];
        for (int i = 0; i < src.length; i++) {
            src[i] = i;
        }
        float[] tile = Upcycling.map(from, to, src, "tile");
        float[] inter = Upcycling.map(from, to, src, "interleave");
        String q = ".self_attn.q_proj.weight";
        int[] tileSrc = {0, 1, 0, 1}, interSrc = {0, 0, 1, 1};
        for (int i = 0; i < 4; i++) {
            TensorView t = to.get("model.layers." + i + q);
            assertEquals(src[from.get("model.layers." + tileSrc[i] + q).off()], tile[t.off()]);
            assertEquals(src[from.get("model.layers." + interSrc[i] + q).off()], inter[t.off()]);
        }
        assertEquals(src[from.lmHead().off() + 3], tile[to.lmHead().off() + 3]);
        assertFalse(java.util.Arrays.equals(tile, inter));
    }
}
