package io.ouro.worker.backend;

import io.ouro.worker.TestDevice;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.OpenClStepOps;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The plan's arithmetic is what the OpenCL backend allocates: for shapes with every activation kept, with a split
 * stash and two parameter segments, and with micro-batches and chunks, the device bytes {@link MemoryPlan} predicts
 * equal the bytes of every buffer the kernel holds, to the byte, measured from the kernel's own arrays (their canaries
 * mark each one's logical end) rather than from a counter kept beside them. And the plan's choice: the least
 * recomputation, then the largest micro-batch that fits.
 */
class MemoryPlanOpenClTest {

    @Test
    void thePlanPredictsTheAllocatedBytes() {
        var dev = OpenClDevices.select(DeviceSpec.parse(TestDevice.spec()));
        boolean cpu = dev.getType() == com.aparapi.device.Device.TYPE.CPU;
        LoopConfig tiny = LoopConfig.tiny();
        LoopConfig fixture = ScheduleFixture.CFG;
        Object[][] cases = {
                {fixture, new StepShape(4, 13, 4, Recompute.NONE, 0, 0)},
                {fixture, new StepShape(4, 13, 2, Recompute.LAYER, 5, 0)},
                {fixture, new StepShape(4, 13, 1, Recompute.LOOP_STEP, 0, 0)},
                {tiny, new StepShape(4, 40, 2, Recompute.LAYER, 7, 700)},
                {fixture, new StepShape(4, 13, 2, Recompute.LAYER, 5, 0).withBf16Stash(true)},
                {tiny, new StepShape(4, 40, 2, Recompute.LAYER, 7, 700).withBf16Stash(true)},
                // the weights' bfloat16 copy, one buffer per segment
                {tiny, new StepShape(4, 40, 2, Recompute.LAYER, 7, 700).withMatmul(MatmulPrecision.BF16_TENSOR)},
                {fixture, new StepShape(4, 13, 4, Recompute.NONE, 0, 0).withMatmul(MatmulPrecision.BF16_TENSOR)},
        };
        for (Object[] c : cases) {
            LoopConfig cfg = (LoopConfig) c[0];
            StepShape shape = (StepShape) c[1];
            boolean bf16 = shape.matmul() == MatmulPrecision.BF16_TENSOR;
            if (!io.ouro.worker.opencl.ClKernels.serves(shape.matmul(), dev)) {
                // a GPU that runs the instruction, after an fp32 program: deploy/gpu-check.sh runs this test again in
                // a bf16_tensor process of its own
                System.out.println(shape + ": not in this process (its program is fp32)");
                continue;
            }
            MemoryPlan plan = MemoryPlan.of(cfg, shape, cpu, OpenClStepOps.deviceBufferFloats(dev));
            assertEquals(bf16, plan.weightCopyBytes() > 0, "the weight copy is planned for bf16_tensor only");
            try (OpenClModel m = new OpenClModel(cfg, dev, shape, false)) {
                long held = m.ops().heldBytes();
                System.out.println(shape + ": the kernel holds " + held + " bytes, planned " + plan.deviceBytes());
                assertEquals(plan.deviceBytes(), held, shape.toString());
                assertEquals(held, m.ops().deviceBytes(), "the backend's own count");
            }
        }
    }

    @Test
    void thePlanChoosesTheLeastRecomputationThenTheLargestMicroBatch() {
        LoopConfig cfg = LoopConfig.ouro1_4B();
        long gib = 1L << 30;
        MemoryPlan p = MemoryPlan.choose(cfg, 32, 4096, 0, null, 4096, 0, 141 * gib, OpenClModel.MAX_BUFFER_FLOATS);
        assertEquals(Recompute.LAYER, p.shape().recompute(), "keeping every activation fits no 4K micro-batch");
        // 8, not 16: the bf16 stash of 16 x 4K tokens would need more than the kernel's 16 stash buffers of < 2 GiB
        assertEquals(8, p.shape().micro());
        assertTrue(p.fits(141 * gib));
        MemoryPlan small = MemoryPlan.choose(cfg, 32, 4096, 0, null, 4096, 0, 60 * gib, OpenClModel.MAX_BUFFER_FLOATS);
        assertTrue(small.shape().micro() <= 8 && small.fits(60 * gib), small.describe(60 * gib));
        System.out.println(small.describe(60 * gib));
        MemoryPlan none = MemoryPlan.choose(cfg, 32, 4096, 0, Recompute.NONE, 4096, 0, 141 * gib,
                OpenClModel.MAX_BUFFER_FLOATS);
        assertNotNull(none.problem(), "recompute none at 4K is refused with the reason");
        System.out.println(none.describe(141 * gib));
    }
}
