package io.ouro.worker.model;

import java.util.SplittableRandom;

/**
 * Initialisation, following HF Ouro's {@code _init_weights}: embeddings and every linear weight (the
 * projections, lm_head and the exit gate) are drawn from N(0, initStd); RMSNorm weights are 1; the
 * exit gate's bias is 0, so the first exit distribution puts half the mass on step 1, a quarter on
 * step 2, and so on. Each tensor has its own generator seeded from (seed, tensor index), so the
 * values do not depend on the order in which tensors are filled.
 */
public final class ParamInit {

    private ParamInit() {
    }

    public static float[] initialize(ParamLayout layout) {
        float[] params = new float[layout.arraySize()];
        initialize(layout, params);
        return params;
    }

    public static void initialize(ParamLayout layout, float[] params) {
        LoopConfig c = layout.config();
        int index = 0;
        for (TensorView t : layout.tensors()) {
            SplittableRandom rng = new SplittableRandom(c.seed() * 0x9E3779B97F4A7C15L + index++);
            int off = t.off();
            for (int i = 0; i < t.len(); i++) {
                params[off + i] = switch (t.kind()) {
                    case NORM -> 1f;
                    case BIAS -> 0f;
                    case EMBEDDING, LINEAR -> (float) (rng.nextGaussian() * c.initStd());
                };
            }
        }
    }
}
