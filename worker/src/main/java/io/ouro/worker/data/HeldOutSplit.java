package io.ouro.worker.data;

/**
 * A deterministic held-out split by document: the stream is cut at its EOS ids, and document i goes to the
 * validation side when a hash of (seed, i) falls below {@code fraction}. Both sides are built in memory
 * (read once), so the split suits corpora that fit in an executor's heap. A small source may have no
 * held-out document: its validation side is then empty.
 */
public final class HeldOutSplit {

    private HeldOutSplit() {
    }

    /** {training, validation}. */
    public static ArrayTokenSource[] split(TokenSource src, double fraction, long seed) {
        int eos = src.eosId();
        if (eos < 0) {
            throw new IllegalArgumentException(src.describe() + ": no EOS id known, cannot split by document");
        }
        long n = src.tokens();
        if (n > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException(src.describe() + ": " + n + " tokens do not fit one in-memory split");
        }
        int[] train = new int[(int) n], val = new int[(int) Math.min(n, (long) (n * Math.min(1, fraction * 3)) + 1024)];
        int nt = 0, nv = 0;
        long doc = 0;
        boolean held = isHeld(0, fraction, seed);
        int[] buf = new int[1 << 16];
        for (long pos = 0; pos < n; pos += buf.length) {
            int len = (int) Math.min(buf.length, n - pos);
            src.read(pos, buf, 0, len);
            for (int i = 0; i < len; i++) {
                int t = buf[i];
                if (held) {
                    if (nv == val.length) {
                        val = java.util.Arrays.copyOf(val, val.length * 2);
                    }
                    val[nv++] = t;
                } else {
                    train[nt++] = t;
                }
                if (t == eos) {
                    doc++;
                    held = isHeld(doc, fraction, seed);
                }
            }
        }
        return new ArrayTokenSource[] {
            new ArrayTokenSource(java.util.Arrays.copyOf(train, nt), src.describe() + " (training split)", eos),
            new ArrayTokenSource(java.util.Arrays.copyOf(val, nv), src.describe() + " (held-out split)", eos)};
    }

    static boolean isHeld(long doc, double fraction, long seed) {
        long h = IndexPermutation.mix(IndexPermutation.mix(seed ^ 0x5EEDL) + doc);
        return (h >>> 11) * 0x1.0p-53 < fraction;
    }
}
