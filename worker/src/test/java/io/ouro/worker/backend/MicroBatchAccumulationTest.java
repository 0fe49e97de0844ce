package io.ouro.worker.backend;

import io.ouro.worker.GradientComparison;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Locale;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A batch run as k micro-batches, the gradient accumulating in the backend, equals the batch at once: every
 * micro-batch's objective is normalised by the whole batch's target count (here the micro-batches hold 52, 42, 52
 * and 51 targets), on the Java and the OpenCL backend, Stage I and II, micro-batches of 2 and 1 sequences and an
 * uneven split (3 + 1). Gradients within 1e-6 relative per tensor, loss within 1e-6 relative.
 */
class MicroBatchAccumulationTest {

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (String device : new String[]{"java", TestDevice.spec()}) {
            for (Objective obj : new Objective[]{Objective.stageOne(0.1), Objective.stageTwo()}) {
                for (int micro : new int[]{2, 1, 3}) {
                    b.add(Arguments.of(device, obj, micro));
                }
            }
        }
        return b.build();
    }

    @ParameterizedTest(name = "{0} {1} micro {2}")
    @MethodSource("cases")
    void microBatchesAddUpToTheBatch(String device, Objective obj, int micro) {
        ScheduleFixture whole = ScheduleFixture.step(device, ScheduleFixture.BATCH, Recompute.NONE, obj);
        ScheduleFixture parts = ScheduleFixture.step(device, micro, Recompute.NONE, obj);
        GradientComparison gc = GradientComparison.of(new ParamLayout(ScheduleFixture.CFG), parts.grads(), whole.grads());
        double lossErr = Math.abs(parts.report().loss() - whole.report().loss()) / Math.abs(whole.report().loss());
        double ceErr = 0;
        for (int t = 0; t < ScheduleFixture.CFG.steps(); t++) {
            ceErr = Math.max(ceErr, Math.abs(parts.report().stepCe()[t] - whole.report().stepCe()[t]));
            ceErr = Math.max(ceErr, Math.abs(parts.report().meanExit()[t] - whole.report().meanExit()[t]));
        }
        String line = String.format(Locale.ROOT, "%s %s: %d micro-batches of %d vs the batch at once: gradients %.2e rel"
                        + " (worst %s), loss %.2e rel, per-step CE/exit %.2e", device, obj.stage(),
                (ScheduleFixture.BATCH + micro - 1) / micro, micro, gc.worst(), gc.tensor(), lossErr, ceErr);
        System.out.println(line);
        assertTrue(parts.report().tokens() == whole.report().tokens(), line);
        assertTrue(gc.worst() <= 1e-6, line);
        assertTrue(lossErr <= 1e-6, line);
        assertTrue(ceErr <= 1e-6, line);
    }
}
