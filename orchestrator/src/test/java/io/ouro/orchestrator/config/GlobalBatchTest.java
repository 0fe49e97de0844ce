package io.ouro.orchestrator.config;

import io.ouro.orchestrator.train.Plan;
import io.ouro.worker.backend.MemoryPlan;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A stage's {@code global_batch}: per-worker batches derived for the run's W, and token budgets as exact steps. */
class GlobalBatchTest {

    static String config(int workers, String stage) {
        return "run: {name: t}\ndata: {synthetic: {tokens: 1000}}\ntrain: {workers: " + workers + "}\nstages:\n  - {name: s, "
                + stage + "}\n";
    }

    static Stage stage(int workers, String stage) {
        return TrainConfig.parse("g.yaml", config(workers, stage)).stages().get(0);
    }

    static String error(int workers, String stage) {
        return assertThrows(ConfigException.class, () -> TrainConfig.parse("bad.yaml", config(workers, stage)))
                .getMessage();
    }

    @Test
    void aGlobalBatchInTokensOrSequencesIsSplitOverTheWorkers() {
        Stage tokens = stage(64, "steps: 3, seq_len: 4096, global_batch: 8M tokens");
        assertEquals(32, tokens.batchPerWorker());
        assertEquals(32, tokens.batchStart());
        assertEquals(8, stage(256, "steps: 3, seq_len: 4096, global_batch: 8M tokens").batchPerWorker());
        assertEquals(4, stage(4, "steps: 3, seq_len: 8, global_batch: 16 sequences").batchPerWorker());
        assertEquals(3, stage(2, "steps: 3, seq_len: 8, global_batch: 48 tokens").batchPerWorker());
        assertEquals(1, stage(1024, "steps: 3, seq_len: 8, global_batch: 1K sequences").batchPerWorker());
        assertEquals(6, stage(2, "steps: 3, seq_len: 8, global_batch: 1_2 sequences").batchStart());

        Stage ramp = stage(64, "steps: 3, seq_len: 4096, global_batch_start: 4M tokens, global_batch: 8M tokens,"
                + " ramp_steps: 10");
        assertEquals(16, ramp.batchStart());
        assertEquals(32, ramp.batchPerWorker());
    }

    @Test
    void aGlobalBatchThatDoesNotDivideNamesTheStageAndTheValidWorkerCounts() {
        assertEquals("bad.yaml: stages[0].global_batch: stage s: 128 sequences of 65536 tokens do not split over"
                        + " W = 256 workers (less than one sequence each); valid W: 1, 2, 4, 8, 16, 32, 64, 128",
                error(256, "steps: 3, seq_len: 65536, global_batch: 8M tokens"));
        assertEquals("bad.yaml: stages[0].global_batch: stage s: 12 sequences of 8 tokens do not split over W = 5"
                + " workers; valid W: 1, 2, 3, 4, 6, 12", error(5, "steps: 3, seq_len: 8, global_batch: 12 sequences"));
        // a ramp's W divides both ends
        assertEquals("bad.yaml: stages[0].global_batch_start: stage s: 6 sequences of 8 tokens do not split over"
                        + " W = 4 workers; valid W: 1, 2",
                error(4, "steps: 3, seq_len: 8, global_batch_start: 6 sequences, global_batch: 8 sequences,"
                        + " ramp_steps: 4"));
        // many divisors: the nearest eight
        String many = error(17, "steps: 3, seq_len: 8, global_batch: 720720 sequences");
        assertTrue(many.endsWith("valid W: 13, 14, 15, 16, 18, 20, 21, 22 (240 in all: the divisors of 720720)"), many);
    }

    @Test
    void aBadGlobalBatchOrBothFormsIsAnErrorNamingTheField() {
        assertTrue(error(1, "steps: 3, seq_len: 8, global_batch: 8M bytes")
                .startsWith("bad.yaml: stages[0].global_batch: expected '<n> tokens' or '<n> sequences'"));
        assertTrue(error(1, "steps: 3, seq_len: 8, global_batch: 64")
                .startsWith("bad.yaml: stages[0].global_batch: expected '<n> tokens' or '<n> sequences'"));
        assertTrue(error(1, "steps: 3, seq_len: 8, global_batch: 0 sequences")
                .startsWith("bad.yaml: stages[0].global_batch: expected between 1 and 2^40 sequences"));
        assertEquals("bad.yaml: stages[0].global_batch: 12 tokens is not a whole number of sequences of seq_len 8",
                error(1, "steps: 3, seq_len: 8, global_batch: 12 tokens"));
        assertTrue(error(1, "steps: 3, seq_len: 8, global_batch: 8 sequences, batch_per_worker: 8")
                .startsWith("bad.yaml: stages[0].batch_per_worker: give either global_batch (and global_batch_start)"
                        + " or batch_per_worker"));
        assertTrue(error(1, "steps: 3, seq_len: 8, global_batch: 8 sequences, batch_start: 4, ramp_steps: 2")
                .startsWith("bad.yaml: stages[0].batch_start: give either global_batch"));
        assertTrue(error(1, "steps: 3, seq_len: 8, batch_per_worker: 8, global_batch_start: 4 sequences")
                .startsWith("bad.yaml: stages[0].global_batch_start: a ramp's global start needs global_batch"));
        assertTrue(error(1, "steps: 3, seq_len: 8")
                .startsWith("bad.yaml: stages[0].batch_per_worker: required: batch_per_worker (sequences per worker)"
                        + " or global_batch"));
    }

    /**
     * Stage 1a of the recipes: 200B tokens of 4,096, 4M -> 8M tokens per step over 20,000 steps. At W = 64 a worker's
     * batch is round(16 + 16 k / 20000) at step k: 16 for k < 625, 16 + j for 1250 j - 625 <= k < 1250 j + 625
     * (j = 1..15), 32 from 19,375: 625·16 + 1250·(17 + ... + 31) + 625·32 = 480,000 sequences per worker over the
     * ramp, times 64 × 4,096 = 125,829,120,000 tokens. The other 74,170,880,000 take 8,841 steps of 8,388,608 with
     * 7,196,672 tokens left (less than a step): 28,841 steps. At W = 256 (4 -> 8 per worker, levels of 2,500 and
     * 5,000 steps) the ramp holds the same 120,000 × 256 × 4,096 tokens, so the same steps. The old rule (the budget
     * over the final batch: 23,841 steps) trained 158,049,763,328 tokens.
     */
    @Test
    void aTokenBudgetBecomesStepsWithTheRampCountedExactly() {
        String s1a = "tokens: 200_000_000_000, seq_len: 4096, global_batch_start: 4M tokens, global_batch: 8M tokens,"
                + " ramp_steps: 20000";
        for (int w : new int[] {64, 256}) {
            Stage s = stage(w, s1a);
            assertEquals(28_841, s.steps(), "W = " + w);
            long tokens = 0;
            for (long k = s.firstStep(); k < s.endStep(); k++) {
                tokens += (long) w * s.batchAt(k) * s.seqLen();
            }
            assertEquals(199_992_803_328L, tokens, "W = " + w);
            assertTrue(200_000_000_000L - tokens < 8L << 20);
        }
        assertEquals(23_841, stage(64, "tokens: 200_000_000_000, seq_len: 4096, global_batch: 8M tokens").steps());
        // the per-worker form counts its ramp the same way
        assertEquals(28_841, stage(64, "tokens: 200_000_000_000, seq_len: 4096, batch_start: 16, batch_per_worker: 32,"
                + " ramp_steps: 20000").steps());
        // a budget that ends inside the ramp: 1 + 2 + 2 sequences of 8 on one worker, then 3 more would pass 44
        assertEquals(3, stage(1, "tokens: 44, seq_len: 8, batch_start: 1, batch_per_worker: 3, ramp_steps: 4").steps());
        assertEquals(1, stage(1, "tokens: 4, seq_len: 8, global_batch: 1 sequences").steps(), "at least one step");
    }

    @Test
    void theShippedRecipesRunTheirGlobalBatchesAt64And256WorkersWithValidation() throws Exception {
        for (String recipe : List.of("ouro-1.4b.yaml", "ouro-2.6b.yaml")) {
            Path file = Path.of("..", "pipeline-configs", recipe);
            String yaml = Files.readString(file);
            assertTrue(!yaml.contains("batch_per_worker"), recipe + " gives global batches");
            TrainConfig at64 = TrainConfig.parseWithWorkers(file.toString(), yaml, 64);
            assertTrue(at64.train().validation().everySteps() > 0, recipe + " validates");
            assertTrue(at64.train().validation().everySteps() <= 5000, recipe + " validates every few thousand steps");
            assertTrue(Plan.describe(at64).get(at64.stages().size() + 1).contains("; validation every 2000 steps"));
            for (int w : new int[] {64, 256}) {
                TrainConfig cfg = TrainConfig.parseWithWorkers(file.toString(), yaml, w);
                List<MemoryPlan> plans = Plan.memoryPlans(cfg);
                for (int i = 0; i < cfg.stages().size(); i++) {
                    Stage s = cfg.stages().get(i), same = at64.stages().get(i);
                    String at = recipe + " " + s.name() + " at W = " + w;
                    assertTrue(plans.get(i).fits(cfg.train().deviceBytes()), at);
                    assertEquals(same.steps(), s.steps(), at + ": the steps do not depend on W");
                    assertEquals((long) 64 * same.batchPerWorker(), (long) w * s.batchPerWorker(), at);
                    long tokens = (long) w * s.batchPerWorker() * s.seqLen();
                    // the published 8M tokens per step (2^23), LongCT's raised to 16M so that 256 workers divide it
                    assertEquals(s.name().equals("longct") ? 16L << 20 : 8L << 20, tokens, at);
                }
                Stage first = cfg.stages().get(0);
                assertEquals(4L << 20, (long) w * first.batchAt(0) * first.seqLen(), recipe + ": 1a ramps from 4M");
                assertEquals(28_841, first.steps(), recipe);
            }
            String at512 = assertThrows(ConfigException.class,
                    () -> TrainConfig.parseWithWorkers(file.toString(), yaml, 512)).getMessage();
            assertTrue(at512.contains("stages[4].global_batch: stage longct: 256 sequences of 65536 tokens do not split"
                    + " over W = 512 workers (less than one sequence each); valid W: 1, 2, 4, 8, 16, 32, 64, 128, 256"),
                    at512);
        }
    }
}
