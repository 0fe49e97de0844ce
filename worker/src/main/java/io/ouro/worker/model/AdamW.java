package io.ouro.worker.model;

import io.ouro.worker.util.Parallel;

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
 *
 * <p>With a range {@code [from, to)} of the flat layout (ZeRO-1: this rank's slice), the optimizer keeps the
 * moments of that range only and updates only the parameters in it; {@link #slices} and {@link Update} are the
 * rule every backend's AdamW follows.
 */
public final class AdamW {

    private final ParamLayout layout;
    private final double beta1, beta2, eps, weightDecay;
    private final DecayPolicy decay;
    private final long from, to;
    private final float[] m, v;
    private long step;

    public AdamW(ParamLayout layout, double beta1, double beta2, double eps, double weightDecay, DecayPolicy decay) {
        this(layout, beta1, beta2, eps, weightDecay, decay, 0, layout.totalSize());
    }

    /** Keeping the moments of (and updating) parameters {@code [from, to)} only. */
    public AdamW(ParamLayout layout, double beta1, double beta2, double eps, double weightDecay, DecayPolicy decay,
                 long from, long to) {
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
        if (from < 0 || to < from || to > layout.totalSize()) {
            throw new IllegalArgumentException("AdamW: range [" + from + ", " + to + ") outside the " + layout.totalSize()
                    + " parameters");
        }
        this.from = from;
        this.to = to;
        this.m = new float[Math.toIntExact(to - from)];
        this.v = new float[m.length];
    }

    /** The scalars of one update: step size lr / (1 - b1^t), sqrt(1 - b2^t), and the decay keep factor. */
    public record Update(float stepSize, float sqrtBc2, float keep, float beta1, float beta2, float eps) {

        /** Update number {@code step} (1-based) at learning rate {@code lr}. */
        public static Update of(long step, double lr, double beta1, double beta2, double eps, double weightDecay) {
            if (!Double.isFinite(lr) || lr < 0) {
                throw new IllegalArgumentException("AdamW.step: learning rate must be finite and >= 0, got " + lr);
            }
            return new Update((float) (lr / (1 - Math.pow(beta1, step))), (float) Math.sqrt(1 - Math.pow(beta2, step)),
                    (float) (1 - lr * weightDecay), (float) beta1, (float) beta2, (float) eps);
        }

        /** The factor a tensor's weights are multiplied by before the step. */
        public float keep(TensorView t, DecayPolicy decay) {
            return decay.decays(t) ? keep : 1f;
        }
    }

    /** Where one update writes: {@code len} parameters of {@code tensor} from flat position {@code at}, moments at {@code momentAt}. */
    public record Slice(TensorView tensor, long at, int len, long momentAt) {
    }

    /** The parts of the trainable tensors inside {@code [from, to)}, in layout order; moments indexed from {@code from}. */
    public static java.util.List<Slice> slices(ParamLayout layout, long from, long to, Predicate<TensorView> trainable) {
        java.util.List<Slice> out = new java.util.ArrayList<>();
        for (TensorView t : layout.tensors()) {
            long a = Math.max(from, t.offset()), b = Math.min(to, t.offset() + t.size());
            if (a < b && trainable.test(t)) {
                out.add(new Slice(t, a, Math.toIntExact(b - a), a - from));
            }
        }
        return out;
    }

    /** The range of the flat layout whose moments this optimizer keeps. */
    public long from() {
        return from;
    }

    public long to() {
        return to;
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
        Update u = Update.of(step + 1, lr, beta1, beta2, eps, weightDecay);
        step++;
        float c1 = (float) (1 - beta1), c2 = (float) (1 - beta2);
        for (Slice sl : slices(layout, from, to, trainable)) {
            update(params, grads, m, v, (int) sl.at(), (int) sl.momentAt(), sl.len(), u.keep(sl.tensor(), decay),
                    u.beta1(), u.beta2(), c1, c2, u.stepSize(), u.sqrtBc2(), u.eps());
        }
    }

    /**
     * AdamW's element update over parameters [off, off + len), their moments from {@code mOff} ({@link #step} and
     * the reference ops' {@code adamw} both run it).
     */
    public static void update(float[] params, float[] grads, float[] m, float[] v, int off, int mOff, int len,
                              float keep, float b1, float b2, float c1, float c2, float stepSize, float sqrtBc2,
                              float e) {
        Parallel.range(len, 1 << 15, (lo, hi) -> {
            for (int i = off + lo, j = mOff + lo; i < off + hi; i++, j++) {
                float g = grads[i];
                float mi = b1 * m[j] + c1 * g;
                float vi = b2 * v[j] + c2 * g * g;
                m[j] = mi;
                v[j] = vi;
                float denom = (float) Math.sqrt(vi) / sqrtBc2 + e;
                params[i] = params[i] * keep - stepSize * mi / denom;
            }
        });
    }

    /** The same on doubles, for the float64 twin of the reference ops. */
    public static void update(double[] params, double[] grads, double[] m, double[] v, int off, int mOff, int len,
                              double keep, double b1, double b2, double c1, double c2, double stepSize,
                              double sqrtBc2, double e) {
        Parallel.range(len, 1 << 15, (lo, hi) -> {
            for (int i = off + lo, j = mOff + lo; i < off + hi; i++, j++) {
                double g = grads[i];
                double mi = b1 * m[j] + c1 * g;
                double vi = b2 * v[j] + c2 * g * g;
                m[j] = mi;
                v[j] = vi;
                double denom = Math.sqrt(vi) / sqrtBc2 + e;
                params[i] = params[i] * keep - stepSize * mi / denom;
            }
        });
    }

    /** A copy of the state, for checkpoints: moments laid out like the parameters, zero outside the kept range. */
    public OptimizerState state() {
        int n = layout.arraySize();
        float[] fm = new float[n], fv = new float[n];
        System.arraycopy(m, 0, fm, (int) from, m.length);
        System.arraycopy(v, 0, fv, (int) from, v.length);
        return new OptimizerState(step, fm, fv);
    }

    /** Restores a state taken by {@link #state()} (from a checkpoint); keeps the part in this optimizer's range. */
    public void restore(OptimizerState s) {
        if (s.m().length != layout.totalSize()) {
            throw new IllegalArgumentException("AdamW.restore: moments hold " + s.m().length + " values, the model "
                    + layout.totalSize());
        }
        restore(s.step(), FlatTensors.source(s.m()), FlatTensors.source(s.v()));
    }

    /** Restores the update count and the moments of this optimizer's range, read tensor piece by tensor piece. */
    public void restore(long step, TensorSource first, TensorSource second) {
        for (Slice sl : slices(layout, from, to, t -> true)) {
            long at = sl.at() - sl.tensor().offset();
            first.read(sl.tensor(), at, m, (int) sl.momentAt(), sl.len());
            second.read(sl.tensor(), at, v, (int) sl.momentAt(), sl.len());
        }
        this.step = step;
    }

    /**
     * Moment {@code which} (0: first, 1: second) as a source over the kept range; reading outside it is an error
     * (with ZeRO-1 another rank keeps it).
     */
    public TensorSource moment(int which) {
        float[] a = which == 0 ? m : v;
        return (t, start, dst, off, len) -> System.arraycopy(a, momentIndex(t, start, len, from, to), dst, off, len);
    }

    /** Where moment element {@code start} of tensor {@code t} sits in a range's moment array; an error outside it. */
    public static int momentIndex(TensorView t, long start, int len, long from, long to) {
        long at = t.offset() + start;
        if (at < from || at + len > to) {
            throw new IllegalArgumentException("moments of " + t.name() + "[" + start + ", " + (start + len)
                    + ") are outside the range [" + from + ", " + to + ") this optimizer keeps");
        }
        return Math.toIntExact(at - from);
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
