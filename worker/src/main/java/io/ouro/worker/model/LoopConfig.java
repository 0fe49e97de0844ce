package io.ouro.worker.model;

/**
 * Shape and hyper-parameters of one LoopLM (Ouro architecture, looplm-spec §1).
 *
 * @param vocab       vocabulary size V
 * @param hidden      hidden size d
 * @param layers      unique layers L in the looped block
 * @param heads       attention heads (MHA, head size d / heads, no GQA)
 * @param ffn         SwiGLU intermediate size
 * @param steps       recurrent steps T (passes of the L layers)
 * @param ropeBase    RoPE base (10K pre-training, 40K annealing, 1M long context)
 * @param normEps     RMSNorm epsilon
 * @param beta        entropy coefficient of the Stage I objective
 * @param initStd     standard deviation of the normal initialisation of embeddings and projections
 * @param seed        seed of the initialisation
 */
public record LoopConfig(
        int vocab, int hidden, int layers, int heads, int ffn, int steps,
        double ropeBase, double normEps, double beta, double initStd, long seed) implements java.io.Serializable {

    public LoopConfig {
        positive("vocab", vocab);
        positive("hidden", hidden);
        positive("layers", layers);
        positive("heads", heads);
        positive("ffn", ffn);
        positive("steps", steps);
        if (hidden % heads != 0) {
            throw new IllegalArgumentException(
                    "LoopConfig.hidden: expected a multiple of heads (" + heads + "), got " + hidden);
        }
        if ((hidden / heads) % 2 != 0) {
            throw new IllegalArgumentException(
                    "LoopConfig.heads: head size hidden/heads must be even for RoPE, got "
                            + hidden + "/" + heads + " = " + (hidden / heads));
        }
        finitePositive("ropeBase", ropeBase);
        finitePositive("normEps", normEps);
        finitePositive("initStd", initStd);
        if (!Double.isFinite(beta) || beta < 0) {
            throw new IllegalArgumentException("LoopConfig.beta: expected a finite value >= 0, got " + beta);
        }
    }

    /** Ouro-1.4B: 24 layers, d 2048, 16 heads, FFN 5632, vocab 49152, T 4. */
    public static LoopConfig ouro1_4B() {
        return new LoopConfig(49152, 2048, 24, 16, 5632, 4, 10_000, 1e-6, 0.1, 0.02, 42);
    }

    /** Ouro-2.6B: the 1.4B block upcycled to 48 layers. */
    public static LoopConfig ouro2_6B() {
        return new LoopConfig(49152, 2048, 48, 16, 5632, 4, 10_000, 1e-6, 0.1, 0.02, 42);
    }

    /** A shape small enough for float64 finite differences over every parameter. */
    public static LoopConfig tiny() {
        return new LoopConfig(13, 8, 2, 2, 12, 3, 10_000, 1e-6, 0.1, 0.2, 7);
    }

    /** The shape the step benchmark uses: Ouro structure with GPT-2's vocabulary. */
    public static LoopConfig bench() {
        return new LoopConfig(50257, 256, 4, 4, 704, 4, 10_000, 1e-6, 0.1, 0.02, 1);
    }

    public int headDim() {
        return hidden / heads;
    }

    public LoopConfig withSteps(int t) {
        return new LoopConfig(vocab, hidden, layers, heads, ffn, t, ropeBase, normEps, beta, initStd, seed);
    }

    public LoopConfig withLayers(int l) {
        return new LoopConfig(vocab, hidden, l, heads, ffn, steps, ropeBase, normEps, beta, initStd, seed);
    }

    public LoopConfig withRopeBase(double base) {
        return new LoopConfig(vocab, hidden, layers, heads, ffn, steps, base, normEps, beta, initStd, seed);
    }

    public LoopConfig withBeta(double b) {
        return new LoopConfig(vocab, hidden, layers, heads, ffn, steps, ropeBase, normEps, b, initStd, seed);
    }

    public LoopConfig withSeed(long s) {
        return new LoopConfig(vocab, hidden, layers, heads, ffn, steps, ropeBase, normEps, beta, initStd, s);
    }

    private static void positive(String field, int v) {
        if (v <= 0) {
            throw new IllegalArgumentException("LoopConfig." + field + ": expected a positive integer, got " + v);
        }
    }

    private static void finitePositive(String field, double v) {
        if (!Double.isFinite(v) || v <= 0) {
            throw new IllegalArgumentException("LoopConfig." + field + ": expected a finite value > 0, got " + v);
        }
    }
}
