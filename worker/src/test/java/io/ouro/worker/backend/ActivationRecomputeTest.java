package io.ouro.worker.backend;

import io.ouro.worker.TestDevice;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.Recompute;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

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
}
