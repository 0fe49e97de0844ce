package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.data.ArrayTokenSource;
import io.ouro.worker.data.HeldOutSplit;
import io.ouro.worker.data.TokenSource;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A deterministic held-out split by region, evaluated every K steps: CE per loop step and exit distribution. */
class ValidationCurriculumTest {

    @Test
    void heldOutSplitIsDeterministicAndKeepsHeldOutTokensOutOfTraining() {
        // random documents: a 12-gram occurs twice only where the split put the same tokens on both sides
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        int[] ids = new int[50_000];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(40) == 0 ? 96 : r.nextInt(96);
        }
        ArrayTokenSource whole = new ArrayTokenSource(ids, "random", 96);
        TokenSource[] a = HeldOutSplit.split(whole, 0.1, 42), b = HeldOutSplit.split(whole, 0.1, 42);
        assertEquals(whole.tokens(), a[0].tokens() + a[1].tokens(), "every token on one side");
        int[] x = read(a[1]), y = read(b[1]);
        assertArrayEquals(x, y, "the same split every time");
        double share = (double) x.length / whole.tokens();
        assertTrue(share > 0.06 && share < 0.14, "about 10% held out: " + share);
        // no held-out 12-gram occurs in training
        Set<String> train = new HashSet<>();
        int[] t = read(a[0]);
        for (int i = 0; i + 12 <= t.length; i++) {
            train.add(java.util.Arrays.toString(java.util.Arrays.copyOfRange(t, i, i + 12)));
        }
        long inTraining = 0, grams = 0;
        for (int i = 0; i + 12 <= x.length; i += 12, grams++) {
            inTraining += train.contains(java.util.Arrays.toString(java.util.Arrays.copyOfRange(x, i, i + 12))) ? 1 : 0;
        }
        assertEquals(0, inTraining, inTraining + " of " + grams + " held-out 12-grams occur in training");
    }

    static int[] read(TokenSource s) {
        int[] t = new int[(int) s.tokens()];
        s.read(0, t, 0, t.length);
        return t;
    }

    @Test
    @Timeout(300)
    void validationIsReportedEveryKSteps() {
        TrainConfig cfg = TrainConfig.parse("val.yaml", """
                run: {name: val-test, seed: 6}
                model: {preset: small, vocab: 61, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 3}
                data: {synthetic: {tokens: 30000}}
                train: {workers: 2, device: java, batch_per_worker: 4, seq_len: 16, steps: 30, segment_steps: 30,
                        lr: 0.01, timeout_s: 30, validation: {every_steps: 10, batches: 3, holdout: 0.1}}
                """);
        SparkConf conf = LocalSpark.conf(cfg);
        List<String> log = new ArrayList<>();
        Trainer.Result r;
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            r = new Trainer(jsc, cfg, l -> {
                System.out.println(l);
                log.add(l);
            }).run(false);
        }
        assertEquals(3, r.validations().size(), "after steps 10, 20, 30");
        double[] first = r.validations().get(0)[1], last = r.validations().get(2)[1];
        assertEquals(3, first.length, "one CE per loop step");
        double exitSum = 0;
        for (double e : r.validations().get(2)[2]) {
            exitSum += e;
        }
        assertEquals(1.0, exitSum, 1e-4, "the exit distribution sums to 1");
        assertTrue(last[2] < first[2], "held-out CE falls as training goes on: " + first[2] + " -> " + last[2]);
        assertTrue(log.stream().anyMatch(l -> l.startsWith("validation after step 9 (stage main, ")), String.join("\n", log));
    }
}
