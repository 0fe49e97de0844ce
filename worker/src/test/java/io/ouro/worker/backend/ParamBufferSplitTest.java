package io.ouro.worker.backend;

import io.ouro.worker.TestData;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.ParamSegments;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.OpenClStepOps;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Parameters past one buffer: with the buffer limit below the model's size, the parameters, gradients and moments
 * go into several device segments (cut at tensor boundaries), and three training steps (forward, backward, gradient
 * norm, AdamW, on every tensor of every segment) give bit-identical parameters and optimizer state to one segment. At
 * the recipe's size: every buffer stays below Aparapi's 2 GiB, so Ouro-1.4B takes three segments and Ouro-2.6B six.
 */
class ParamBufferSplitTest {

    @Test
    void severalParameterSegmentsChangeNothing() {
        LoopConfig cfg = ScheduleFixture.CFG;
        ParamLayout layout = new ParamLayout(cfg);
        long params = layout.totalSize(), largest = 0;
        for (io.ouro.worker.model.TensorView t : layout.tensors()) {
            largest = Math.max(largest, t.size());
        }
        long limit = Math.max(largest, params / 4);
        StepShape one = new StepShape(ScheduleFixture.BATCH, ScheduleFixture.SEQ, 2, Recompute.LAYER, 0, 0);
        StepShape two = one.withBufferLimit(limit);
        float[][] a = train(one), b = train(two);
        int count = new ParamSegments(layout, limit).count();
        assertTrue(count >= 3, count + " segments");
        assertArrayEquals(a[0], b[0], 0f, "parameters after 3 steps");
        assertArrayEquals(a[1], b[1], 0f, "first moments");
        assertArrayEquals(a[2], b[2], 0f, "second moments");
        assertEquals(a[3][0], b[3][0], 1e-6 * a[3][0], "gradient norm");
    }

    @Test
    void theRecipeModelsFitTheKernelsSegmentsAndLargerOnesAreRefused() {
        long limit = OpenClModel.MAX_BUFFER_FLOATS;
        ParamSegments s = OpenClStepOps.paramSegments(new ParamLayout(LoopConfig.ouro2_6B()), limit);
        assertEquals(6, s.count());
        for (int i = 0; i < s.count(); i++) {
            assertTrue(4 * s.size(i) < (1L << 31), "segment " + i + " below 2 GiB");
        }
        assertEquals(3, OpenClStepOps.paramSegments(new ParamLayout(LoopConfig.ouro1_4B()), limit).count());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OpenClStepOps.paramSegments(new ParamLayout(LoopConfig.ouro2_6B().withLayers(96)), limit));
        assertTrue(e.getMessage().contains("the OpenCL kernel has 8"), e.getMessage());
    }

    // parameters, moments and the last gradient norm after three steps
    private static float[][] train(StepShape shape) {
        int n = shape.batch() * shape.seqLen();
        int[] tokens = TestData.tokens(n, ScheduleFixture.CFG.vocab(), 41);
        int[] targets = TestData.targets(n, ScheduleFixture.CFG.vocab(), 42);
        try (TrainingBackend b = Backends.open(TestDevice.spec(), ScheduleFixture.CFG, AdamWConfig.ouro(), shape)) {
            b.setParameters(TestData.params(b.layout(), 9));
            double norm = 0;
            for (int step = 0; step < 3; step++) {
                b.zeroGradients();
                b.forwardBackward(tokens, targets, Objective.stageOne(0.1));
                norm = b.clipGradients(1e9);
                b.adamw(1e-2, t -> true);
            }
            var opt = b.optimizerState();
            return new float[][]{b.parameters(), opt.m(), opt.v(), {(float) norm}};
        }
    }
}
