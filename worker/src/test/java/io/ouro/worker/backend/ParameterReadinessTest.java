package io.ouro.worker.backend;

import io.ouro.worker.TestData;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.StepShape;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * What ZeRO-1's overlapped all-gather relies on: the forward asks for each group of
 * {@link ParamLayout#gradientGroups()} before its first op that reads it, in the forward's order (the embedding, the
 * layers first to last, the tail), so a group written inside that call is never read stale. Every group starts as
 * NaN and gets its values only when asked for; the step must equal, bit for bit, the one whose parameters were all
 * there from the start (a NaN read anywhere would make the loss or a gradient NaN). Both backends, Stage I and II,
 * two micro-batches, every recomputation mode.
 */
class ParameterReadinessTest {

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("io.ouro.worker.backend.GradientReadyTest#cases")
    void eachGroupIsAskedForBeforeItsFirstRead(String device, Objective obj, Recompute rc) {
        var cfg = ScheduleFixture.CFG;
        int n = ScheduleFixture.BATCH * ScheduleFixture.SEQ;
        int[] tokens = TestData.tokens(n, cfg.vocab(), 51), targets = TestData.targets(n, cfg.vocab(), 52);
        StepShape shape = new StepShape(ScheduleFixture.BATCH, ScheduleFixture.SEQ, 2, rc, 0, 0);
        try (TrainingBackend b = Backends.open(device, cfg, AdamWConfig.ouro(), shape)) {
            float[] params = TestData.params(b.layout(), 7);
            b.setParameters(params);
            b.zeroGradients();
            StepReport want = b.forwardBackward(tokens, targets, obj);
            float[] wantGrads = b.gradients();

            List<long[]> groups = b.layout().gradientGroups();
            float[] stale = params.clone();
            Arrays.fill(stale, Float.NaN);
            b.setParameters(stale);
            b.zeroGradients();
            List<Integer> asked = new ArrayList<>();
            boolean[] current = new boolean[groups.size()];
            StepReport got = b.forwardBackward(tokens, targets, obj, g -> {
                if (!current[g]) {
                    current[g] = true;
                    asked.add(g);
                    long[] r = groups.get(g);
                    b.writeParameters(r[0], params, (int) r[0], (int) (r[1] - r[0]));
                }
            }, group -> { });

            int layers = cfg.layers();
            List<Integer> order = new ArrayList<>();
            for (int g = layers + 1; g >= 0; g--) {
                order.add(g);
            }
            assertEquals(order, asked, "the embedding, the layers first to last, then the tail");
            String what = device + " " + obj.stage() + " " + rc;
            assertEquals(want.loss(), got.loss(), what + ": loss");
            assertArrayEquals(want.stepCe(), got.stepCe(), what + ": per-step CE");
            assertArrayEquals(wantGrads, b.gradients(), what + ": gradients");
            assertArrayEquals(params, b.parameters(), what + ": parameters");
        }
    }
}
