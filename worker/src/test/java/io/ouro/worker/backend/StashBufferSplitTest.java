package io.ouro.worker.backend;

import io.ouro.worker.TestDevice;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.opencl.DeviceSpec;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.OpenClStepOps;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The many-buffer path at a tiny size: with the largest buffer set to one hidden state of a micro-batch, the stash
 * of the recompute modes spreads over one device buffer per hidden state (10 in LAYER mode, 8 in LOOP_STEP mode here),
 * and the step's gradient and loss stay bit-identical to one stash buffer. The buffers the model allocates are the
 * ones the plan's arithmetic ({@link OpenClModel#activationBuffers(LoopConfig, StepShape, boolean, long)}) predicts.
 */
class StashBufferSplitTest {

    @ParameterizedTest
    @EnumSource(value = Recompute.class, names = {"LAYER", "LOOP_STEP"})
    void manySmallStashBuffersChangeNothing(Recompute recompute) {
        LoopConfig cfg = ScheduleFixture.CFG;
        int micro = 2;
        long hidden = (long) micro * ScheduleFixture.SEQ * cfg.hidden();
        StepShape one = new StepShape(ScheduleFixture.BATCH, ScheduleFixture.SEQ, micro, recompute, 7, 0);
        StepShape split = one.withBufferLimit(hidden);
        String device = TestDevice.spec();
        Objective obj = Objective.stageOne(0.1);
        ScheduleFixture a = ScheduleFixture.step(device, one, obj);
        ScheduleFixture b = ScheduleFixture.step(device, split, obj);
        assertArrayEquals(a.grads(), b.grads(), 0f, "gradient with the stash split over many buffers");
        assertEquals(a.report().loss(), b.report().loss(), 0.0);

        var dev = OpenClDevices.select(DeviceSpec.parse(device));
        boolean cpu = dev.getType() == com.aparapi.device.Device.TYPE.CPU;
        try (OpenClModel m = new OpenClModel(cfg, dev, split, false)) {
            OpenClStepOps.BufferLayout got = m.activationBuffers();
            OpenClStepOps.BufferLayout planned = OpenClModel.activationBuffers(cfg, split, cpu,
                    OpenClStepOps.deviceBufferFloats(dev));
            int expected = recompute == Recompute.LAYER ? 1 + 2 * cfg.steps() + cfg.steps() * (cfg.layers() - 1)
                    : 1 + 2 * cfg.steps() + cfg.layers() - 1;
            System.out.println(recompute + ": " + got.stashFloats().length + " stash buffers of " + hidden
                    + " floats, activation buffer " + got.actFloats() + " floats");
            assertEquals(expected, got.stashFloats().length);
            assertArrayEquals(planned.stashFloats(), got.stashFloats());
            assertEquals(planned.actFloats(), got.actFloats());
            assertTrue(m.ops().isRunningOpenCl());
        }
    }
}
