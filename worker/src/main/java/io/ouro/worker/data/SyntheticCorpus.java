package io.ouro.worker.data;

import java.util.SplittableRandom;

/**
 * The project's own demo and test corpus, generated, so that nothing third-party ships: documents are
 * arithmetic progressions modulo {@code vocab - 1} (start and stride drawn per document, lengths 8-64,
 * one token in 50 replaced by noise), separated by the EOS id {@code vocab - 1}. A model learns it: the
 * next token follows from the previous two, except at document starts and noise.
 */
public final class SyntheticCorpus {

    private SyntheticCorpus() {
    }

    public static ArrayTokenSource generate(int vocab, int tokens, long seed) {
        if (vocab < 3) {
            throw new IllegalArgumentException("synthetic corpus: vocab must be >= 3, got " + vocab);
        }
        int mod = vocab - 1;
        int eos = vocab - 1;
        int[] out = new int[tokens];
        SplittableRandom rng = new SplittableRandom(seed);
        int i = 0;
        while (i < tokens) {
            int len = 8 + rng.nextInt(57);
            int a = rng.nextInt(mod);
            int b = 1 + rng.nextInt(Math.max(1, Math.min(mod - 1, 16)));
            for (int j = 0; j < len && i < tokens; j++) {
                out[i++] = rng.nextInt(50) == 0 ? rng.nextInt(mod) : (int) ((a + (long) j * b) % mod);
            }
            if (i < tokens) {
                out[i++] = eos;
            }
        }
        return new ArrayTokenSource(out, "synthetic(vocab " + vocab + ", seed " + seed + ")", eos);
    }
}
