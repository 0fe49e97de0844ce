package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Data parallelism changes nothing but speed: W = 2 workers with B sequences each give the same per-step
 * losses and final weights as W = 1 worker with 2B, on Spark local[2] with real barrier stages and the
 * TCP ring all-reduce between the two tasks.
 */
class DataParallelTest {

    static TrainConfig config(int workers, int batch) {
        return TrainConfig.parse("test.yaml", """
                run: {name: dp-test, seed: 11}
                model: {preset: small, vocab: 97, hidden: 32, layers: 2, heads: 2, ffn: 48, recurrent_steps: 3}
                data: {synthetic: {tokens: 20000}}
                train:
                  workers: %d
                  device: java
                  batch_per_worker: %d
                  seq_len: 16
                  steps: 10
                  segment_steps: 4
                  lr: 0.003
                  warmup_steps: 2
                  clip: 1.0
                  timeout_s: 60
                  exchange_interface: 127.0.0.0/8   # the ring on the loopback network by subnet, as on a fabric
                """.formatted(workers, batch));
    }

    static Trainer.Result train(TrainConfig cfg, List<String> log) {
        SparkConf conf = LocalSpark.conf(cfg);
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            return new Trainer(jsc, cfg, line -> {
                System.out.println(line);
                log.add(line);
            }).run(true);
        }
    }

    @Test
    @Timeout(300)
    void twoWorkersEqualOneWorkerWithTwiceTheBatch() {
        List<String> log1 = new ArrayList<>(), log2 = new ArrayList<>();
        Trainer.Result one = train(config(1, 4), log1);
        Trainer.Result two = train(config(2, 2), log2);

        assertEquals(10, one.steps().size());
        assertEquals(10, two.steps().size());
        double worstLoss = 0;
        for (int s = 0; s < 10; s++) {
            double a = one.steps().get(s).loss(), b = two.steps().get(s).loss();
            worstLoss = Math.max(worstLoss, Math.abs(a - b) / Math.max(1e-12, Math.abs(a)));
            assertEquals(one.steps().get(s).tokens(), two.steps().get(s).tokens());
        }
        float[] p1 = one.parameters(), p2 = two.parameters();
        assertEquals(p1.length, p2.length);
        double worstParam = 0, maxAbs = 0;
        for (int i = 0; i < p1.length; i++) {
            worstParam = Math.max(worstParam, Math.abs(p1[i] - p2[i]));
            maxAbs = Math.max(maxAbs, Math.abs(p1[i]));
        }
        System.out.printf("W=2 vs W=1 after 10 steps: losses %.2e relative, parameters %.2e absolute (max |w| %.3f)%n",
                worstLoss, worstParam, maxAbs);
        assertTrue(worstLoss <= 1e-5, "per-step losses differ by " + worstLoss);
        assertTrue(worstParam <= 1e-5, "final parameters differ by " + worstParam);
        double first = one.steps().get(0).loss(), last = one.steps().get(9).loss();
        assertTrue(last < first, "training lowers the loss: " + first + " -> " + last);

        // segments after the first reuse the model state resident in the executor
        for (int k = 1; k < two.segments().size(); k++) {
            for (SegmentResult r : two.segments().get(k)) {
                assertEquals("resident", r.stateSource(), "segment " + k + " rank " + r.rank());
            }
        }
        // bytes on the wire: with W = 2 each rank sends 2(W-1)/W = 1 times the buffer per all-reduce: the
        // gradients and the 3 + 2T metric sums (tokens, loss, per-step CE and exit, non-finite flag), every step
        long perStep = 4L * (p1.length + 3 + 2 * 3);
        for (SegmentResult[] seg : two.segments()) {
            long steps = seg[0].steps().size() + seg[1].steps().size();
            for (SegmentResult r : seg) {
                assertEquals(steps * perStep, r.payloadBytesSent(), "payload bytes of rank " + r.rank());
            }
        }
        assertTrue(log2.stream().anyMatch(l -> l.startsWith("stage main step 9 loss")), "a log line per step");
    }
}
