package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.data.ArrayTokenSource;
import io.ouro.worker.data.HeldOutSplit;
import io.ouro.worker.data.SyntheticCorpus;
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

/** A deterministic held-out split by document, evaluated every K steps: CE per loop step and exit distribution. */
class ValidationCurriculumTest {

    static List<String> docs(ArrayTokenSource s) {
        int[] t = new int[(int) s.tokens()];
        s.read(0, t, 0, t.length);
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < t.length; i++) {
            if (t[i] == s.eosId()) {
                out.add(java.util.Arrays.toString(java.util.Arrays.copyOfRange(t, start, i)));
                start = i + 1;
            }
        }
        return out;
    }

    @Test
    void heldOutSplitIsByDocumentAndDeterministic() {
        ArrayTokenSource whole = SyntheticCorpus.generate(97, 50_000, 5);
        ArrayTokenSource[] a = HeldOutSplit.split(whole, 0.1, 42), b = HeldOutSplit.split(whole, 0.1, 42);
        assertEquals(whole.tokens(), a[0].tokens() + a[1].tokens(), "every token on one side");
        int[] x = new int[(int) a[1].tokens()], y = new int[(int) b[1].tokens()];
        a[1].read(0, x, 0, x.length);
        b[1].read(0, y, 0, y.length);
        assertArrayEquals(x, y, "the same split every time");
        List<String> all = docs(whole), train = docs(a[0]), val = docs(a[1]);
        assertEquals(all.size(), train.size() + val.size(), "whole documents, none cut");
        double share = (double) val.size() / all.size();
        assertTrue(share > 0.05 && share < 0.15, "about 10% held out: " + share);
        Set<String> v = new HashSet<>(val);
        assertTrue(all.containsAll(val));
        assertTrue(train.stream().filter(v::contains).count() < 3, "held-out documents are not trained on");
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
