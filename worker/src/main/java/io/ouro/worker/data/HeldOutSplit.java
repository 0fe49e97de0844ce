package io.ouro.worker.data;

/**
 * A deterministic held-out split computed by rule, for sources of any size: the stream is cut into regions
 * of R tokens ({@link #regionTokens}: 1/512 of the stream rounded down to a power of two, between 64 and
 * 2^20), and region i goes to the validation side when a hash of (seed, i) falls below {@code fraction}.
 * Each side is a view that maps its positions onto the source (a bit per region, a count per 64 regions:
 * 250 KB for 10^12 tokens), so nothing is copied and both sides read through the source. A document that
 * crosses a region boundary is cut there: at most one in R / (mean document length) documents, about 1 in
 * 2,000 for 500-token documents at R = 2^20. A small source may have no held-out region: its validation
 * side is then empty.
 */
public final class HeldOutSplit {

    private HeldOutSplit() {
    }

    /** {training, validation}. */
    public static TokenSource[] split(TokenSource src, double fraction, long seed) {
        if (!(fraction >= 0 && fraction < 1)) {
            throw new IllegalArgumentException("held-out fraction must be in [0, 1), got " + fraction);
        }
        long n = src.tokens();
        long r = regionTokens(n);
        long regions = (n + r - 1) / r;
        long[] held = new long[(int) ((regions + 63) / 64)];
        for (long i = 0; i < regions; i++) {
            if (isHeld(i, fraction, seed)) {
                held[(int) (i >>> 6)] |= 1L << (i & 63);
            }
        }
        return new TokenSource[] {new Side(src, held, r, regions, false), new Side(src, held, r, regions, true)};
    }

    /** Tokens per region of a source of {@code n} tokens. */
    public static long regionTokens(long n) {
        return Math.max(64, Math.min(1L << 20, Long.highestOneBit(Math.max(1, n / 512))));
    }

    static boolean isHeld(long region, double fraction, long seed) {
        long h = IndexPermutation.mix(IndexPermutation.mix(seed ^ 0x5EEDL) + region);
        return (h >>> 11) * 0x1.0p-53 < fraction;
    }

    /** One side of the split: its regions in order, concatenated. */
    private static final class Side implements TokenSource {
        private final TokenSource src;
        private final long[] mine;
        private final long[] before; // regions of this side in the words before each word
        private final long region, regions;
        private final boolean heldOut;
        private final long tokens;

        Side(TokenSource src, long[] held, long region, long regions, boolean heldOut) {
            this.src = src;
            this.region = region;
            this.regions = regions;
            this.heldOut = heldOut;
            mine = new long[held.length];
            before = new long[held.length + 1];
            for (int w = 0; w < held.length; w++) {
                long valid = regions - 64L * w >= 64 ? -1L : (1L << (regions - 64L * w)) - 1;
                mine[w] = (heldOut ? held[w] : ~held[w]) & valid;
                before[w + 1] = before[w] + Long.bitCount(mine[w]);
            }
            long count = before[held.length];
            long last = regions - 1;
            boolean hasLast = regions > 0 && (mine[(int) (last >>> 6)] & (1L << (last & 63))) != 0;
            tokens = count * region - (hasLast ? regions * region - src.tokens() : 0);
        }

        /** The source region of this side's j-th region. */
        private long regionOf(long j) {
            int lo = 0, hi = mine.length - 1;
            while (lo < hi) { // the last word w with before[w] <= j
                int mid = (lo + hi + 1) >>> 1;
                if (before[mid] <= j) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            long bits = mine[lo];
            for (long k = j - before[lo]; k > 0; k--) {
                bits &= bits - 1;
            }
            return 64L * lo + Long.numberOfTrailingZeros(bits);
        }

        @Override
        public long tokens() {
            return tokens;
        }

        @Override
        public void read(long start, int[] dst, int off, int len) {
            if (start < 0 || len < 0 || start + len > tokens) {
                throw new IndexOutOfBoundsException(describe() + ": tokens [" + start + ", " + (start + len)
                        + ") outside [0, " + tokens + ")");
            }
            while (len > 0) {
                long r = regionOf(start / region), in = start % region;
                int n = (int) Math.min(len, region - in);
                src.read(r * region + in, dst, off, n);
                start += n;
                off += n;
                len -= n;
            }
        }

        @Override
        public int eosId() {
            return src.eosId();
        }

        @Override
        public boolean concurrentReads() {
            return src.concurrentReads();
        }

        @Override
        public String describe() {
            return src.describe() + (heldOut ? " (held-out split" : " (training split") + ", regions of " + region
                    + " tokens)";
        }
    }
}
