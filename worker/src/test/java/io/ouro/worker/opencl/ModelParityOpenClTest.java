package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.GradientComparison;
import io.ouro.worker.TestData;
import io.ouro.worker.model.AdamW;
import io.ouro.worker.model.DecayPolicy;
import io.ouro.worker.model.GradClip;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.reference.ReferenceModel;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole OpenCL training step against the reference backend, on real OpenCL: per-step logits, the
 * loss and its parts, every gradient tensor, and the parameters after three clipped AdamW steps.
 * Shapes are not multiples of the tile (16) or work-group (64) sizes.
 */
class ModelParityOpenClTest {

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of(Objective.stageOne(0.1)),
                Arguments.of(Objective.stageTwo()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void openClStepEqualsReferenceStep(Objective obj) {
        LoopConfig cfg = new LoopConfig(61, 24, 2, 3, 40, 3, 10_000, 1e-6, 0.1, 0.1, 21);
        int batch = 2, seqLen = 13, n = batch * seqLen;
        ReferenceModel ref = new ReferenceModel(cfg);
        ParamLayout layout = ref.layout();
        float[] params = TestData.params(layout, 8);
        int[] tokens = TestData.tokens(n, cfg.vocab(), 31);
        int[] targets = TestData.targets(n, cfg.vocab(), 32);

        try (OpenClModel cl = new OpenClModel(cfg, OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec())), batch, seqLen, true)) {
            cl.setParameters(params);
            StepReport a = cl.forward(tokens, targets, obj);
            assertTrue(cl.ops().isRunningOpenCl(), "must run as OpenCL");
            StepReport b = ref.forward(params, tokens, targets, batch, seqLen, obj, true);
            double logitsErr = 0;
            for (int t = 0; t < cfg.steps(); t++) {
                float[] x = cl.logits(t), y = ref.logits(t);
                for (int i = 0; i < y.length; i++) {
                    logitsErr = Math.max(logitsErr, Math.abs(x[i] - y[i]));
                }
            }
            double lossErr = Math.abs(a.loss() - b.loss()) / Math.abs(b.loss());
            double partsErr = 0;
            for (int t = 0; t < cfg.steps(); t++) {
                partsErr = Math.max(partsErr, Math.abs(a.stepCe()[t] - b.stepCe()[t]) / b.stepCe()[t]);
                partsErr = Math.max(partsErr, Math.abs(a.meanExit()[t] - b.meanExit()[t]));
            }

            cl.zeroGradients();
            cl.backward();
            float[] gA = cl.gradients();
            float[] gB = new float[params.length];
            ref.backward(params, gB);
            GradientComparison gc = GradientComparison.of(layout, gA, gB);
            double gradErr = gc.worst();
            String worst = gc.tensor();

            // three clipped AdamW steps on both sides
            AdamW opt = AdamW.ouro(layout);
            DecayPolicy decay = DecayPolicy.defaults();
            List<String> losses = new java.util.ArrayList<>();
            float[] pB = params.clone();
            cl.setParameters(params);
            for (int s = 0; s < 3; s++) {
                double la = cl.forward(tokens, targets, obj).loss();
                cl.zeroGradients();
                cl.backward();
                cl.clipGradients(1.0);
                cl.adamw(1e-2, 0.9, 0.95, 1e-8, 0.1, decay, obj.trainsLm() ? t -> true : layout::isGate);
                double lb = ref.forward(pB, tokens, targets, batch, seqLen, obj, false).loss();
                float[] g = new float[pB.length];
                ref.backward(pB, g);
                GradClip.clip(g, 1.0);
                opt.step(pB, g, 1e-2, obj.trainsLm() ? t -> true : layout::isGate);
                losses.add(String.format(Locale.ROOT, "%.5f/%.5f", la, lb));
            }
            float[] pA = cl.parameters();
            double paramErr = 0;
            for (int i = 0; i < pA.length; i++) {
                paramErr = Math.max(paramErr, Math.abs(pA[i] - pB[i]));
            }
            String line = String.format(Locale.ROOT,
                    "opencl step %s: logits %.2e abs, loss %.2e rel, CE/exit %.2e, gradients %.2e rel (worst %s), "
                            + "params after 3 AdamW steps %.2e abs; losses opencl/java %s; bytes up %d down %d",
                    obj.stage(), logitsErr, lossErr, partsErr, gradErr, worst, paramErr, losses,
                    cl.ops().bytesUploaded(), cl.ops().bytesDownloaded());
            System.out.println(line);
            assertTrue(logitsErr <= 1e-4, line);
            assertTrue(lossErr <= 1e-5, line);
            assertTrue(partsErr <= 1e-5, line);
            assertTrue(gradErr <= 1e-3, line);
            assertTrue(paramErr <= 1e-4, line);
        }
    }
}
