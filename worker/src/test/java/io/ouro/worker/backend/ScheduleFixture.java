package io.ouro.worker.backend;

import io.ouro.worker.TestData;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.StepShape;

/** One training step's report and gradient on a backend built with a given micro-batch and recomputation. */
record ScheduleFixture(StepReport report, float[] grads) {

    /** A shape that is not a multiple of any tile: 4 sequences of 13 tokens, d 24, 3 heads, 3 loop steps, 2 layers. */
    static final LoopConfig CFG = new LoopConfig(61, 24, 2, 3, 40, 3, 10_000, 1e-6, 0.1, 0.1, 21);
    static final int BATCH = 4, SEQ = 13;

    static ScheduleFixture step(String device, int micro, Recompute recompute, Objective obj) {
        return step(device, new StepShape(BATCH, SEQ, micro, recompute, 0, 0), obj);
    }

    static ScheduleFixture step(String device, StepShape shape, Objective obj) {
        int n = BATCH * SEQ;
        int[] tokens = TestData.tokens(n, CFG.vocab(), 31), targets = TestData.targets(n, CFG.vocab(), 32);
        // micro-batches with very different numbers of targets: the token weighting must stay exact
        for (int i = 0; i < 10; i++) {
            targets[SEQ + i] = -1;
        }
        targets[3 * SEQ + 4] = -1;
        try (TrainingBackend b = Backends.open(device, CFG, AdamWConfig.ouro(), shape)) {
            b.setParameters(TestData.params(b.layout(), 8));
            b.zeroGradients();
            StepReport r = b.forwardBackward(tokens, targets, obj);
            return new ScheduleFixture(r, b.gradients());
        }
    }
}
