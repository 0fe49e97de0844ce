package io.ouro.worker.backend;

import io.ouro.worker.GradientComparison;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Recomputing activations in the backward pass changes nothing: a recomputed activation is the same op on the same
 * input, so with recompute = layer and loop_step the gradient and the loss are bit-identical to keeping every
 * activation, on the Java and the OpenCL backend, Stage I and II, with one and with two micro-batches.
 */
class ActivationRecomputeTest {

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (String device : new String[]{"java", TestDevice.spec()}) {
            for (Objective obj : new Objective[]{Objective.stageOne(0.1), Objective.stageTwo()}) {
                for (int micro : new int[]{ScheduleFixture.BATCH, 2}) {
                    for (Recompute r : new Recompute[]{Recompute.LAYER, Recompute.LOOP_STEP}) {
                        b.add(Arguments.of(device, obj, micro, r));
                    }
                }
            }
        }
        return b.build();
    }

    @ParameterizedTest(name = "{0} {1} micro {2} {3}")
    @MethodSource("cases")
    void recomputedGradientsEqualKeptOnes(String device, Objective obj, int micro, Recompute recompute) {
        ScheduleFixture kept = ScheduleFixture.step(device, micro, Recompute.NONE, obj);
        ScheduleFixture re = ScheduleFixture.step(device, micro, recompute, obj);
        int differing = 0;
        for (int i = 0; i < kept.grads().length; i++) {
            if (Float.floatToIntBits(kept.grads()[i]) != Float.floatToIntBits(re.grads()[i])) {
                differing++;
            }
        }
        System.out.println(device + " " + obj.stage() + " micro " + micro + " " + recompute + ": " + differing + " of "
                + kept.grads().length + " gradient elements differ from recompute none; loss " + re.report().loss());
        assertArrayEquals(kept.grads(), re.grads(), 0f, "gradient with recompute " + recompute);
        assertEquals(kept.report().loss(), re.report().loss(), 0.0);
        assertEquals(Arrays.toString(kept.report().stepCe()), Arrays.toString(re.report().stepCe()));
    }

    static Stream<Arguments> chunked() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (String device : new String[]{"java", TestDevice.spec()}) {
            for (Recompute r : new Recompute[]{Recompute.LAYER, Recompute.LOOP_STEP}) {
                b.add(Arguments.of(device, r));
            }
        }
        return b.build();
    }

    /**
     * With a layer's row-wise ops in chunks of 5 rows (a micro-batch of 26 rows: 5 chunks and a remainder) the forward
     * pass computes each row as before (bit-identical on Java; on OpenCL a kernel may block rows differently: 1e-6)
     * and the weight gradients are the same sums taken chunk by chunk: within 1e-6 relative.
     */
    @ParameterizedTest(name = "{0} {1} in chunks of 5 rows")
    @MethodSource("chunked")
    void chunkedRecomputationEqualsKeptActivations(String device, Recompute recompute) {
        Objective obj = Objective.stageOne(0.1);
        ScheduleFixture kept = ScheduleFixture.step(device, 2, Recompute.NONE, obj);
        ScheduleFixture re = ScheduleFixture.step(device, new StepShape(ScheduleFixture.BATCH, ScheduleFixture.SEQ, 2,
                recompute, 5, 0), obj);
        GradientComparison gc = GradientComparison.of(new ParamLayout(ScheduleFixture.CFG), re.grads(), kept.grads());
        System.out.println(device + " " + recompute + " chunks of 5 rows: gradients " + gc.worst() + " rel (worst "
                + gc.tensor() + ")");
        double lossErr = Math.abs(kept.report().loss() - re.report().loss()) / kept.report().loss();
        assertTrue(device.equals("java") ? lossErr == 0 : lossErr <= 1e-6, "loss " + lossErr + " rel");
        assertTrue(gc.worst() <= 1e-6, device + " " + recompute + ": " + gc.worst() + " at " + gc.tensor());
    }
}
