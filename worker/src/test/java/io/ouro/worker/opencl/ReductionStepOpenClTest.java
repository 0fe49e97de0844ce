package io.ouro.worker.opencl;

import io.ouro.worker.GradientComparison;
import io.ouro.worker.TestData;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepReport;
import org.junit.jupiter.api.Test;

import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A whole training step (forward and backward) with the work-group reductions forced (what a GPU runs by default)
 * against the same step on the device's default path (on pocl: xent.cl's cross-entropy, the translated weight
 * gradient and embedding backward), on 140 rows (the final norm's weight gradient over them spans two blocks of 128, the second short) and a
 * vocabulary of 301 (not a multiple of the 4-float loads). Only the order of float32 sums differs: the loss and
 * per-step cross-entropies within 1e-6 relative (measured on pocl: 6.4e-10 and 7.4e-8), every gradient tensor within 1e-5 of its largest magnitude
 * (GradientComparison; measured 9.4e-7), where a wrong sum, a missed row or a row counted twice would move them by
 * far more.
 */
class ReductionStepOpenClTest {

    @Test
    void aStepWithTheReductionsAgreesWithTheDefaultStep() {
        LoopConfig cfg = new LoopConfig(301, 24, 2, 3, 40, 3, 10_000, 1e-6, 0.1, 0.1, 21);
        int batch = 2, seqLen = 70, n = batch * seqLen;
        Objective obj = Objective.stageOne(0.1);
        float[] params = TestData.params(new ParamLayout(cfg), 8);
        int[] tokens = TestData.tokens(n, cfg.vocab(), 31), targets = TestData.targets(n, cfg.vocab(), 32);
        targets[3] = -1;
        try (OpenClModel cl = new OpenClModel(cfg, OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec())),
                batch, seqLen, false)) {
            ParamLayout layout = cl.layout();
            cl.setParameters(params);
            cl.ops().useReduction(false);
            StepReport a = cl.forward(tokens, targets, obj);
            cl.zeroGradients();
            cl.backward();
            float[] gA = cl.gradients();

            cl.ops().useReduction(true);
            cl.ops().startProfile();
            StepReport b = cl.forward(tokens, targets, obj);
            cl.zeroGradients();
            cl.backward();
            float[] gB = cl.gradients();
            Map<String, long[]> profile = cl.ops().profile();
            cl.ops().useReduction(!cl.ops().cpuDevice());
            assertTrue(cl.ops().isRunningOpenCl(), "must run as OpenCL");
            for (DeviceOp op : new DeviceOp[]{DeviceOp.CL_CE_FWD_WG, DeviceOp.CL_CE_BWD_WG,
                    DeviceOp.CL_RMSNORM_DW_PARTIAL, DeviceOp.CL_RMSNORM_DW_SUM, DeviceOp.CL_EMBED_BWD}) {
                assertTrue(profile.containsKey(op.profileName()), op + " ran");
            }
            for (DeviceOp op : new DeviceOp[]{DeviceOp.CE_FWD, DeviceOp.CL_CE_FWD, DeviceOp.RMSNORM_BWD_DW,
                    DeviceOp.EMBED_BWD}) {
                assertEquals(null, profile.get(op.profileName()), op + " did not run");
            }

            double lossErr = Math.abs(a.loss() - b.loss()) / Math.abs(a.loss()), ceErr = 0;
            for (int t = 0; t < cfg.steps(); t++) {
                ceErr = Math.max(ceErr, Math.abs(a.stepCe()[t] - b.stepCe()[t]) / a.stepCe()[t]);
            }
            GradientComparison gc = GradientComparison.of(layout, gB, gA);
            String line = String.format(Locale.ROOT, "reductions vs default step: loss %.2e rel, step CE %.2e rel, "
                    + "gradients %.2e (worst %s)", lossErr, ceErr, gc.worst(), gc.tensor());
            System.out.println(line);
            assertTrue(lossErr <= 1e-6, line);
            assertTrue(ceErr <= 1e-6, line);
            assertTrue(gc.worst() <= 1e-5, line);
        }
    }
}
