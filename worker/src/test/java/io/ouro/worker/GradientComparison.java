package io.ouro.worker;

import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Per-tensor comparison of two gradient buffers: the worst {@code max|a - b| / max|b|} over tensors, and
 * which tensor it is. A tensor whose reference gradient is all zero must be all zero on the other side.
 */
public record GradientComparison(double worst, String tensor) {

    public static GradientComparison of(ParamLayout layout, float[] actual, float[] reference) {
        double worst = 0;
        String name = "";
        for (TensorView t : layout.tensors()) {
            double diff = 0, scale = 0;
            for (int i = t.off(); i < t.off() + t.len(); i++) {
                diff = Math.max(diff, Math.abs(actual[i] - reference[i]));
                scale = Math.max(scale, Math.abs(reference[i]));
            }
            if (scale == 0) {
                assertEquals(0.0, diff, t.name() + ": the reference has no gradient here, neither may this one");
            } else if (diff / scale > worst) {
                worst = diff / scale;
                name = t.name();
            }
        }
        return new GradientComparison(worst, name);
    }
}
