package io.ouro.worker.backend;

import io.ouro.worker.TestData;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.OpenClStepOps;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The many-buffer path at a tiny size: with the largest buffer set to 700 floats (one hidden state of a micro-batch
 * is 640), the stash of the recompute modes spreads over one device buffer per hidden state (10 in LAYER mode, 8 in
 * LOOP_STEP mode) and the 1,377 parameters over two segments; the step's gradient and loss stay bit-identical to one
 * buffer of each. The buffers the model allocates are the ones the plan's arithmetic
 * ({@link OpenClModel#activationBuffers(LoopConfig, StepShape, boolean, long)}) predicts.
 */
class StashBufferSplitTest {

    private static final LoopConfig CFG = LoopConfig.tiny();

    @ParameterizedTest
    @EnumSource(value = Recompute.class, names = {"LAYER", "LOOP_STEP"})
    void manySmallBuffersChangeNothing(Recompute recompute) {
        StepShape one = new StepShape(4, 40, 2, recompute, 7, 0);
        StepShape split = one.withBufferLimit(700);
        String device = TestDevice.spec();
        Object[] a = step(device, one), b = step(device, split);
        assertArrayEquals((float[]) a[1], (float[]) b[1], 0f, "gradient with the state split over many buffers");
        assertEquals(((StepReport) a[0]).loss(), ((StepReport) b[0]).loss(), 0.0);

        var dev = OpenClDevices.select(DeviceSpec.parse(device));
        boolean cpu = dev.getType() == com.aparapi.device.Device.TYPE.CPU;
        try (OpenClModel m = new OpenClModel(CFG, dev, split, false)) {
            OpenClStepOps.BufferLayout got = m.activationBuffers();
            OpenClStepOps.BufferLayout planned = OpenClModel.activationBuffers(CFG, split, cpu,
                    OpenClStepOps.deviceBufferFloats(dev));
            int expected = recompute == Recompute.LAYER ? 1 + 2 * CFG.steps() + CFG.steps() * (CFG.layers() - 1)
                    : 1 + 2 * CFG.steps() + CFG.layers() - 1;
            System.out.println(recompute + ": " + got.stashFloats().length + " stash buffers, " + m.stepOps().segments().count()
                    + " parameter segments, activation buffer " + got.actFloats() + " floats");
            assertEquals(expected, got.stashFloats().length);
            assertEquals(2, m.stepOps().segments().count());
            assertArrayEquals(planned.stashFloats(), got.stashFloats());
            assertEquals(planned.actFloats(), got.actFloats());
            assertTrue(m.ops().isRunningOpenCl());
        }
    }

    private static Object[] step(String device, StepShape shape) {
        int n = shape.batch() * shape.seqLen();
        int[] tokens = TestData.tokens(n, CFG.vocab(), 51), targets = TestData.targets(n, CFG.vocab(), 52);
        try (TrainingBackend b = Backends.open(device, CFG, AdamWConfig.ouro(), shape)) {
            b.setParameters(TestData.params(b.layout(), 3));
            b.zeroGradients();
            StepReport r = b.forwardBackward(tokens, targets, Objective.stageOne(0.1));
            return new Object[]{r, b.gradients()};
        }
    }
}
