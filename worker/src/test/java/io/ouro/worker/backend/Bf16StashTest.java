package io.ouro.worker.backend;

import io.ouro.worker.TestDevice;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The stash in bfloat16 ({@link StepShape#withBf16Stash}), both backends, both recomputations that stash: the loss is
 * exactly float32's (the forward pass runs on float32 working copies), the gradient moves by bfloat16's rounding of
 * the stashed hidden states and no more (relative L2 distance from float32's, measured about 1e-3; bound 2e-2, and
 * above 0: the rounding happened), and the OpenCL backend, which stores 16-bit values, computes what the Java reference
 * computes (which rounds the same values in float arrays) within float32 tolerance.
 */
class Bf16StashTest {

    /** Relative L2 distance of the bfloat16-stash gradient from float32's. */
    static final double ROUNDING = 2e-2;
    /** OpenCL against Java, both in bfloat16: float32 differences that now and then round to the other bfloat16. */
    static final double BACKENDS = 1e-3;

    @ParameterizedTest
    @EnumSource(value = Recompute.class, names = {"LAYER", "LOOP_STEP"})
    void theStashInBf16ChangesTheGradientByItsRoundingOnly(Recompute recompute) {
        StepShape fp32 = new StepShape(ScheduleFixture.BATCH, ScheduleFixture.SEQ, 2, recompute, 5, 0);
        StepShape bf16 = fp32.withBf16Stash(true);
        Objective obj = Objective.stageOne(0.1);
        ScheduleFixture[] java = {ScheduleFixture.step("java", fp32, obj), ScheduleFixture.step("java", bf16, obj)};
        String device = TestDevice.spec();
        ScheduleFixture[] cl = {ScheduleFixture.step(device, fp32, obj), ScheduleFixture.step(device, bf16, obj)};
        for (ScheduleFixture[] pair : new ScheduleFixture[][] {java, cl}) {
            assertEquals(pair[0].report().loss(), pair[1].report().loss(), 0, "the forward pass is float32's");
            double rel = relative(pair[1].grads(), pair[0].grads());
            System.out.printf(Locale.ROOT, "Bf16StashTest %s %s: loss %.6f, gradient %.3e from float32's%n",
                    pair == java ? "java" : device, recompute, pair[1].report().loss(), rel);
            assertTrue(rel > 0, "the stash was rounded");
            assertTrue(rel <= ROUNDING, "gradient moved by " + rel);
        }
        double backends = relative(cl[1].grads(), java[1].grads());
        System.out.printf(Locale.ROOT, "Bf16StashTest %s: OpenCL vs Java, both bf16: %.3e (float32: %.3e)%n", recompute,
                backends, relative(cl[0].grads(), java[0].grads()));
        assertTrue(backends <= BACKENDS, "OpenCL vs Java in bf16: " + backends);
    }

    static double relative(float[] a, float[] ref) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            double d = a[i] - ref[i];
            num += d * d;
            den += (double) ref[i] * ref[i];
        }
        return Math.sqrt(num / den);
    }
}
