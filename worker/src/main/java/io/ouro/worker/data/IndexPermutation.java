package io.ouro.worker.data;

/**
 * A pseudo-random bijection of {@code [0, n)} computed per index, without materialising the
 * permutation: a balanced Feistel network over the smallest even power of two covering {@code n}, with
 * cycle walking back into range. A corpus of trillions of tokens has billions of training sequences,
 * which no array can shuffle; this shuffles them in O(1) memory, the same way on every rank.
 */
public final class IndexPermutation {

    private static final int ROUNDS = 6;
    private final long n;
    private final int halfBits;
    private final long halfMask;
    private final long[] keys = new long[ROUNDS];

    public IndexPermutation(long n, long seed) {
        if (n < 1) {
            throw new IllegalArgumentException("IndexPermutation: n must be >= 1, got " + n);
        }
        this.n = n;
        int bits = 64 - Long.numberOfLeadingZeros(Math.max(1, n - 1));
        bits = Math.max(2, bits + (bits & 1));
        this.halfBits = bits / 2;
        this.halfMask = (1L << halfBits) - 1;
        long s = seed;
        for (int i = 0; i < ROUNDS; i++) {
            s = mix(s + 0x9E3779B97F4A7C15L);
            keys[i] = s;
        }
    }

    public long size() {
        return n;
    }

    /** The image of {@code i} in {@code [0, n)}. */
    public long apply(long i) {
        if (i < 0 || i >= n) {
            throw new IndexOutOfBoundsException("index " + i + " outside [0, " + n + ")");
        }
        long x = i;
        do {
            x = encrypt(x);
        } while (x >= n);
        return x;
    }

    private long encrypt(long x) {
        long left = x >>> halfBits;
        long right = x & halfMask;
        for (int r = 0; r < ROUNDS; r++) {
            long next = left ^ (mix(right ^ keys[r]) & halfMask);
            left = right;
            right = next;
        }
        return (left << halfBits) | right;
    }

    /** SplitMix64's finaliser. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
