package io.ouro.worker.model;

/** Global gradient-norm clipping, as {@code torch.nn.utils.clip_grad_norm_} does it. */
public final class GradClip {

    private GradClip() {
    }

    /** The L2 norm of the whole gradient buffer, summed in index order (so it is reproducible). */
    public static double norm(float[] grads) {
        double ss = 0;
        for (float g : grads) {
            ss += (double) g * g;
        }
        return Math.sqrt(ss);
    }

    /** The factor clipping scales a gradient of this norm by (applied only when below 1). */
    public static double coefficient(double norm, double maxNorm) {
        return maxNorm / (norm + 1e-6);
    }

    /**
     * Scales the gradients by {@code maxNorm / (norm + 1e-6)} when that is below 1.
     *
     * @return the norm before clipping
     */
    public static double clip(float[] grads, double maxNorm) {
        double norm = norm(grads);
        double coef = coefficient(norm, maxNorm);
        if (coef < 1) {
            float c = (float) coef;
            for (int i = 0; i < grads.length; i++) {
                grads[i] *= c;
            }
        }
        return norm;
    }
}
