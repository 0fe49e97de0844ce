package io.ouro.worker;

import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorKind;
import io.ouro.worker.model.TensorView;

import java.util.SplittableRandom;

/** Deterministic random inputs for tests. */
public final class TestData {

    private TestData() {
    }

    /** Initialised parameters with the norm weights and gate bias moved away from 1 and 0. */
    public static float[] params(ParamLayout layout, long seed) {
        float[] p = ParamInit.initialize(layout);
        SplittableRandom rng = new SplittableRandom(seed);
        for (TensorView t : layout.tensors()) {
            if (t.kind() == TensorKind.NORM || t.kind() == TensorKind.BIAS) {
                for (int i = t.off(); i < t.off() + t.len(); i++) {
                    p[i] += (float) (0.2 * rng.nextGaussian());
                }
            }
        }
        return p;
    }

    public static double[] widen(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    public static int[] tokens(int n, int vocab, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = rng.nextInt(vocab);
        }
        return t;
    }

    /** Next-token targets for random sequences; the last position of the first sequence has none. */
    public static int[] targets(int n, int vocab, long seed) {
        int[] t = tokens(n, vocab, seed ^ 0x5DEECE66DL);
        t[Math.min(n - 1, 2)] = -1;
        return t;
    }
}
