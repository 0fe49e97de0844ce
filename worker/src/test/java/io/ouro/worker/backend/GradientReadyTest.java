package io.ouro.worker.backend;

import io.ouro.worker.TestData;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the gradient exchange relies on: the backward reports every group of {@link ParamLayout#gradientGroups()}
 * once, in order, during the last micro-batch, and a group's gradient read out when it is reported (scaled, through
 * the exchange buffer on OpenCL) is the final one, bit for bit; written back, it replaces exactly that range. Both
 * backends, Stage I and II, two micro-batches, every recomputation mode.
 */
class GradientReadyTest {

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (String device : new String[] {"java", TestDevice.spec()}) {
            for (Objective obj : new Objective[] {Objective.stageOne(0.1), Objective.stageTwo()}) {
                for (Recompute rc : Recompute.values()) {
                    b.add(Arguments.of(device, obj, rc));
                }
            }
        }
        return b.build();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void groupsAreReportedInOrderWhenFinal(String device, Objective obj, Recompute rc) {
        var cfg = ScheduleFixture.CFG;
        int n = ScheduleFixture.BATCH * ScheduleFixture.SEQ;
        int[] tokens = TestData.tokens(n, cfg.vocab(), 41), targets = TestData.targets(n, cfg.vocab(), 42);
        StepShape shape = new StepShape(ScheduleFixture.BATCH, ScheduleFixture.SEQ, 2, rc, 0, 0);
        try (TrainingBackend b = Backends.open(device, cfg, AdamWConfig.ouro(), shape)) {
            b.setParameters(TestData.params(b.layout(), 9));
            b.zeroGradients();
            List<long[]> groups = b.layout().gradientGroups();
            List<Integer> order = new ArrayList<>();
            float[][] atReport = new float[groups.size()][];
            long[] lastRange = groups.get(groups.size() - 1);
            float[] lastWhenFirstReported = new float[(int) (lastRange[1] - lastRange[0])];
            b.forwardBackward(tokens, targets, obj, g -> {
                order.add(g);
                long[] r = groups.get(g);
                atReport[g] = new float[(int) (r[1] - r[0])];
                b.readGradients(r[0], atReport[g], 0, atReport[g].length, 3f);
                if (order.size() == 1) {
                    b.readGradients(lastRange[0], lastWhenFirstReported, 0, lastWhenFirstReported.length, 1f);
                }
            });
            List<Integer> expected = new ArrayList<>();
            for (int g = 0; g < groups.size(); g++) {
                expected.add(g);
            }
            assertEquals(expected, order, "each group once, in order");
            float[] fin = b.gradients();
            long covered = 0;
            for (int g = 0; g < groups.size(); g++) {
                long[] r = groups.get(g);
                covered += r[1] - r[0];
                float[] want = Arrays.copyOfRange(fin, (int) r[0], (int) r[1]);
                for (int i = 0; i < want.length; i++) {
                    want[i] *= 3f;
                }
                assertArrayEquals(want, atReport[g], device + " " + obj.stage() + " " + rc + ": group " + g
                        + " changed after it was reported final");
            }
            assertEquals(b.layout().totalSize(), covered, "the groups cover every parameter");
            // the overlap is real: when the first group is reported, the backward has not finished the last one (the
            // embedding, which Stage I trains; Stage II trains the gate only, so its last group stays zero)
            assertTrue(groups.size() > 1, "more than one group");
            float[] last = Arrays.copyOfRange(fin, (int) lastRange[0], (int) lastRange[1]);
            boolean trained = false;
            for (float x : last) {
                trained |= x != 0f;
            }
            assertEquals(obj.stage() == Objective.Stage.STAGE_I, trained, "the last group has a gradient in Stage I only");
            if (trained) {
                assertFalse(Arrays.equals(last, lastWhenFirstReported), device + " " + obj.stage() + " " + rc
                        + ": the last group was already final when the first was reported");
            }
            // written back, a range replaces exactly that range
            long[] r = groups.get(1);
            float[] ones = new float[(int) (r[1] - r[0])];
            Arrays.fill(ones, 1f);
            b.writeGradients(r[0], ones, 0, ones.length);
            float[] after = b.gradients();
            for (int i = 0; i < fin.length; i++) {
                assertEquals(i >= r[0] && i < r[1] ? 1f : fin[i], after[i], "gradient " + i + " after writing group 1");
            }
            float[] p = b.parameters(), slice = new float[100];
            b.readParameters(r[0] + 5, slice, 0, 100);
            assertArrayEquals(Arrays.copyOfRange(p, (int) r[0] + 5, (int) r[0] + 105), slice);
            Arrays.fill(slice, 0.5f);
            b.writeParameters(r[0] + 5, slice, 0, 100);
            float[] p2 = b.parameters();
            for (int i = 0; i < p.length; i++) {
                assertEquals(i >= r[0] + 5 && i < r[0] + 105 ? 0.5f : p[i], p2[i], "parameter " + i);
            }
        }
    }
}
