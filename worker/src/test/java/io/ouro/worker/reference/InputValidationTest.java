package io.ouro.worker.reference;

import io.ouro.worker.TestData;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.NonFiniteException;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Wrong shapes, out-of-range ids, NaN parameters and invalid configs fail loudly and say why. */
class InputValidationTest {

    final LoopConfig cfg = LoopConfig.tiny();
    final ReferenceModel model = new ReferenceModel(cfg);
    final ParamLayout layout = model.layout();
    final float[] params = TestData.params(layout, 1);
    final int[] tokens = TestData.tokens(10, cfg.vocab(), 1);
    final int[] targets = TestData.targets(10, cfg.vocab(), 2);
    final Objective obj = Objective.stageOne(0.1);

    static <T extends Throwable> void assertMessage(Class<T> type, String expected, Executable e) {
        T t = assertThrows(type, e);
        assertTrue(t.getMessage().contains(expected), "message '" + t.getMessage() + "' lacks '" + expected + "'");
    }

    @Test
    void invalidConfigNamesTheField() {
        assertMessage(IllegalArgumentException.class, "LoopConfig.hidden",
                () -> new LoopConfig(10, 10, 1, 3, 8, 2, 1e4, 1e-6, 0.1, 0.02, 1));
        assertMessage(IllegalArgumentException.class, "LoopConfig.heads",
                () -> new LoopConfig(10, 12, 1, 4, 8, 2, 1e4, 1e-6, 0.1, 0.02, 1));
        assertMessage(IllegalArgumentException.class, "LoopConfig.steps",
                () -> new LoopConfig(10, 8, 1, 2, 8, 0, 1e4, 1e-6, 0.1, 0.02, 1));
        assertMessage(IllegalArgumentException.class, "LoopConfig.beta",
                () -> new LoopConfig(10, 8, 1, 2, 8, 2, 1e4, 1e-6, Double.NaN, 0.02, 1));
        assertMessage(IllegalArgumentException.class, "LoopConfig.normEps",
                () -> new LoopConfig(10, 8, 1, 2, 8, 2, 1e4, -1, 0.1, 0.02, 1));
        assertMessage(IllegalArgumentException.class, "Objective.k",
                () -> Objective.stageTwo(0, 0.005));
    }

    @Test
    void wrongShapesAreRefused() {
        assertMessage(IllegalArgumentException.class, "expected length batch*seqLen = 12",
                () -> model.forward(params, tokens, targets, 3, 4, obj, false));
        assertMessage(IllegalArgumentException.class, "params: expected length",
                () -> model.forward(new float[5], tokens, targets, 2, 5, obj, false));
        model.forward(params, tokens, targets, 2, 5, obj, false);
        assertMessage(IllegalArgumentException.class, "grads: expected length",
                () -> model.backward(params, new float[3]));
    }

    @Test
    void idsOutsideTheVocabularyAreRefused() {
        int[] bad = tokens.clone();
        bad[4] = cfg.vocab();
        assertMessage(IllegalArgumentException.class, "tokens[4] = 13",
                () -> model.forward(params, bad, targets, 2, 5, obj, false));
        int[] badTargets = targets.clone();
        badTargets[1] = -7;
        assertMessage(IllegalArgumentException.class, "targets[1] = -7",
                () -> model.forward(params, tokens, badTargets, 2, 5, obj, false));
        assertMessage(IllegalArgumentException.class, "nothing to learn",
                () -> model.forward(params, tokens, new int[]{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, 2, 5, obj, false));
    }

    @Test
    void nanParameterIsReportedByTensorName() {
        float[] p = params.clone();
        int off = layout.get("model.layers.1.mlp.up_proj.weight").off();
        p[off + 5] = Float.NaN;
        assertMessage(NonFiniteException.class, "model.layers.1.mlp.up_proj.weight holds NaN at element 5",
                () -> model.forward(p, tokens, targets, 2, 5, obj, false));
    }

    @Test
    void backwardWithoutASuccessfulForwardIsRefused() {
        ReferenceModel fresh = new ReferenceModel(cfg);
        assertMessage(IllegalStateException.class, "needs a successful forward",
                () -> fresh.backward(params, new float[params.length]));
        float[] p = params.clone();
        p[0] = Float.POSITIVE_INFINITY;
        assertThrows(NonFiniteException.class, () -> fresh.forward(p, tokens, targets, 2, 5, obj, false));
        assertMessage(IllegalStateException.class, "needs a successful forward",
                () -> fresh.backward(p, new float[p.length]));
    }

    @Test
    void modelsTooLargeForOneArrayAreRefusedClearly() {
        ParamLayout big = new ParamLayout(LoopConfig.ouro2_6B());
        assertTrue(big.totalSize() > Integer.MAX_VALUE);
        assertMessage(IllegalStateException.class, "does not fit one Java array", big::arraySize);
    }
}
