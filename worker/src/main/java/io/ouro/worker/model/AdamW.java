package io.ouro.worker.model;


import java.util.function.Predicate;

/**
 * AdamW with decoupled weight decay and bias correction, the update of {@code torch.optim.AdamW}:
 * <pre>
 * p -= lr * wd * p                      (tensors the {@link DecayPolicy} selects)
 * m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * </pre>
 * The moments share the parameters' flat layout. Tensors outside the trainable set (the frozen LM in
 * Stage II) are left untouched, moments included.
 */
public final class AdamW {

    private final ParamLayout layout;
    private final double beta1, beta2, eps, weightDecay;
    private final DecayPolicy decay;
    private final float[] m, v;
    private long step;

    public AdamW(ParamLayout layout, double beta1, double beta2, double eps, double weightDecay, DecayPolicy decay) {
        check("beta1", beta1, 0, 1);
        check("beta2", beta2, 0, 1);
        if (!(eps > 0) || !Double.isFinite(eps)) {
            throw new IllegalArgumentException("AdamW.eps: expected a finite value > 0, got " + eps);
        }
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new IllegalArgumentException("AdamW.weightDecay: expected a finite value >= 0, got " + weightDecay);
        }
        this.layout = layout;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.decay = decay;
        this.m = new float[layout.arraySize()];
        this.v = new float[layout.arraySize()];
    }

    /** The Ouro recipe's optimizer: beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1, default decay policy. */
    public static AdamW ouro(ParamLayout layout) {
        return new AdamW(layout, 0.9, 0.95, 1e-8, 0.1, DecayPolicy.defaults());
    }

    private static void check(String field, double x, double lo, double hi) {
        if (!(x >= lo && x < hi)) {
            throw new IllegalArgumentException("AdamW." + field + ": expected a value in [" + lo + ", " + hi
                    + "), got " + x);
        }
    }

    /** One update of every tensor that {@code trainable} accepts. */
    public void step(float[] params, float[] grads, double lr, Predicate<TensorView> trainable) {
        if (!Double.isFinite(lr) || lr < 0) {
            throw new IllegalArgumentException("AdamW.step: learning rate must be finite and >= 0, got " + lr);
        }
        step++;
        double bc1 = 1 - Math.pow(beta1, step);
        double bc2 = Math.sqrt(1 - Math.pow(beta2, step));
        float stepSize = (float) (lr / bc1);
        float b1 = (float) beta1, b2 = (float) beta2, c1 = (float) (1 - beta1), c2 = (float) (1 - beta2);
        float sqrtBc2 = (float) bc2, e = (float) eps;
        for (TensorView t : layout.tensors()) {
            if (!trainable.test(t)) {
                continue;
            }
            float keep = decay.decays(t) ? (float) (1 - lr * weightDecay) : 1f;
            io.ouro.worker.reference.JavaOps.adamwUpdate(params, grads, m, v, t.off(), t.len(), keep, b1, b2, c1, c2,
                    stepSize, sqrtBc2, e);
        }
    }

    /** A copy of the state, for checkpoints. */
    public OptimizerState state() {
        return new OptimizerState(step, m.clone(), v.clone());
    }

    /** Restores a state taken by {@link #state()} (from a checkpoint). */
    public void restore(OptimizerState s) {
        if (s.m().length != m.length) {
            throw new IllegalArgumentException("AdamW.restore: moments hold " + s.m().length + " values, the model "
                    + m.length);
        }
        System.arraycopy(s.m(), 0, m, 0, m.length);
        System.arraycopy(s.v(), 0, v, 0, v.length);
        step = s.step();
    }

    public long stepCount() {
        return step;
    }

    public float[] firstMoment() {
        return m;
    }

    public float[] secondMoment() {
        return v;
    }
}
