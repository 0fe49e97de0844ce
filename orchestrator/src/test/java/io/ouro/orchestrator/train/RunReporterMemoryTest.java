package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The driver's memory of a run stays bounded over a long run, while its totals still cover every step. */
class RunReporterMemoryTest {

    static final int SEGMENT = 100;
    static final long STEPS = 200_000;

    static final String CONFIG = """
            run: {name: memory-test, seed: 3}
            model: {preset: small, vocab: 53, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 2}
            data:
              sources:
                - {name: arith, synthetic: {tokens: 100000, seed: 1}}
            train: {workers: 1, device: java, segment_steps: %d, timeout_s: 30}
            stages:
              - name: a
                steps: %d
                seq_len: 8
                batch_per_worker: 1
                lr: {peak: 0.004, warmup_steps: 2, schedule: constant}
            """.formatted(SEGMENT, STEPS);

    static StepMetrics step(long s) {
        double loss = 5 + Math.sin(s * 0.001) + (s % 7) * 0.01;
        return new StepMetrics(s, loss, new double[] {loss + 0.1, loss}, new double[] {0.4, 0.6}, 1.0, 1e-3,
                8 + s % 3, 10 + s % 5, 8, 1, 0.5, 0, Double.NaN, 0, Double.NaN, s % 997 == 0 ? "non-finite loss on 1 rank(s)" : null,
                null);
    }

    /** Totals computed the plain way over {@code [from, to)}. */
    static RunTotals expected(long from, long to) {
        long tokens = 0, skipped = 0;
        double wall = 0, compute = 0, comm = 0, wait = 0, min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY;
        for (long s = from; s < to; s++) {
            StepMetrics m = step(s);
            tokens += m.tokens();
            skipped += m.skipped() == null ? 0 : 1;
            wall += m.wallMs();
            compute += m.computeMs();
            comm += m.commMs();
            wait += m.dataWaitMs();
            min = Math.min(min, m.loss());
            max = Math.max(max, m.loss());
        }
        return new RunTotals(from, to - from, tokens, skipped, wall, compute, comm, wait, min, max);
    }

    static void assertTotals(RunTotals want, RunTotals got) {
        assertEquals(want.from(), got.from());
        assertEquals(want.steps(), got.steps());
        assertEquals(want.tokens(), got.tokens());
        assertEquals(want.skipped(), got.skipped());
        assertEquals(want.wallMs(), got.wallMs(), 1e-6 * want.wallMs());
        assertEquals(want.computeMs(), got.computeMs(), 1e-6 * want.computeMs());
        assertEquals(want.commMs(), got.commMs(), 1e-6 * want.commMs());
        assertEquals(want.dataWaitMs(), got.dataWaitMs(), 1e-6 * want.dataWaitMs());
        assertEquals(want.minLoss(), got.minLoss(), 0.0);
        assertEquals(want.maxLoss(), got.maxLoss(), 0.0);
    }

    @Test
    @Timeout(300)
    void twoHundredThousandStepsKeepABoundedWindowAndExactTotals() {
        TrainConfig cfg = TrainConfig.parse("memory.yaml", CONFIG);
        long[] lines = {0};
        int most = 0;
        try (RunReporter r = new RunReporter(cfg, "memory", l -> lines[0]++, new Configuration())) {
            for (long first = 0; first < STEPS; first += SEGMENT) {
                r.segmentStarts(first, first + SEGMENT, "a");
                List<StepMetrics> seg = new ArrayList<>();
                for (long s = first; s < first + SEGMENT; s++) {
                    seg.add(step(s));
                }
                r.segmentDone(new SegmentResult[] {new SegmentResult(0, "0", "host", 1, "java", "fresh", 0, 0, seg,
                        null, null, null)}, SEGMENT * 12.0);
                most = Math.max(most, r.held());
            }
            int bound = StepWindow.CAP + StepWindow.STARTS + RunReporter.SEGMENT_STEPS / SEGMENT + RunReporter.VALIDATIONS;
            assertTrue(most <= bound, "held " + most + " > " + bound);
            List<StepMetrics> kept = r.steps();
            assertEquals(StepWindow.CAP, kept.size());
            assertEquals(STEPS - StepWindow.CAP, kept.get(0).step(), "the newest steps are kept");
            assertEquals(STEPS - 1, kept.get(kept.size() - 1).step());
            assertEquals(RunReporter.SEGMENT_STEPS / SEGMENT, r.segments().size());
            assertTotals(expected(0, STEPS), r.totals());
            assertTrue(lines[0] >= STEPS, "every step was logged");
        }
    }

    @Test
    void aRetryTakesBackTheTotalsOfTheStepsItTakesBack() {
        StepWindow w = new StepWindow(50);
        for (long first = 0; first < 3_000; first += 20) {
            w.segmentStarts(first);
            for (long s = first; s < first + 20; s++) {
                w.add(step(s));
            }
        }
        w.segmentStarts(3_000);
        w.add(step(3_000));
        w.add(step(3_001));
        w.rewind(2_000); // back to a checkpoint, further back than the window
        assertTotals(expected(0, 2_000), w.totals());
        assertTrue(w.recent().isEmpty(), "the kept steps were all after the checkpoint");
        w.segmentStarts(2_000);
        for (long s = 2_000; s < 2_030; s++) {
            w.add(step(s));
        }
        w.rewind(2_010); // within a segment, where the window still holds its steps
        assertTotals(expected(0, 2_010), w.totals());
        assertEquals(10, w.recent().size());
        w.rewind(0);
        assertTotals(RunTotals.NONE, w.totals());
    }
}
