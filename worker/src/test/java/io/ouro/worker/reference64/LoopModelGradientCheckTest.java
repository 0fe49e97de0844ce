package io.ouro.worker.reference64;

import io.ouro.worker.TestData;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole model's backward pass, every parameter tensor, element by element, against float64
 * central differences, for both objectives on several small shapes.
 */
class LoopModelGradientCheckTest {

    static final double TOLERANCE = 1e-6;

    static Stream<Arguments> shapes() {
        // vocab, hidden, layers, heads, ffn, steps, batch, seqLen
        int[][] shapes = {
                {13, 8, 2, 2, 12, 3, 2, 5},
                {11, 12, 1, 3, 10, 4, 1, 7},
                {9, 8, 3, 1, 6, 2, 3, 3},
                {17, 8, 1, 4, 8, 1, 2, 6},
        };
        List<Arguments> args = new ArrayList<>();
        for (int[] s : shapes) {
            for (Objective obj : List.of(Objective.stageOne(0.1), Objective.stageTwo())) {
                args.add(Arguments.of(s, obj));
            }
        }
        return args.stream();
    }

    @ParameterizedTest(name = "{1} on V,d,L,H,F,T,B,S = {0}")
    @MethodSource("shapes")
    void analyticGradientMatchesFiniteDifferencesForEveryTensor(int[] s, Objective objective) {
        LoopConfig cfg = new LoopConfig(s[0], s[1], s[2], s[3], s[4], s[5], 10_000, 1e-6, 0.1, 0.3, 11);
        int batch = s[6], seqLen = s[7];
        ReferenceModel model = new ReferenceModel(cfg);
        ParamLayout layout = model.layout();
        double[] params = TestData.widen(TestData.params(layout, 5));
        int[] tokens = TestData.tokens(batch * seqLen, cfg.vocab(), 1);
        int[] targets = TestData.targets(batch * seqLen, cfg.vocab(), 2);

        model.forward(params, tokens, targets, batch, seqLen, objective, false);
        double[] grads = new double[params.length];
        model.backward(params, grads);

        StringBuilder report = new StringBuilder();
        double worst = 0;
        for (TensorView t : layout.tensors()) {
            if (!objective.trainsLm() && !layout.isGate(t)) {
                for (int i = t.off(); i < t.off() + t.len(); i++) {
                    assertEquals(0.0, grads[i], "Stage II must not touch the frozen LM: " + t.name());
                }
                continue;
            }
            double err = GradientChecker.maxRelativeError(params, t.off(), t.len(), grads, t.off(),
                    () -> model.forward(params, tokens, targets, batch, seqLen, objective, false).loss());
            worst = Math.max(worst, err);
            report.append(String.format("%n  %-48s %.3e", t.name(), err));
        }
        System.out.printf("gradient check %s %s: max relative error %.3e%s%n", objective.stage(),
                java.util.Arrays.toString(s), worst, report);
        assertTrue(worst <= TOLERANCE, "max relative error " + worst + " > " + TOLERANCE + report);
    }
}
