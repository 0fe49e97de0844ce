package io.ouro.worker.data;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The held-out split by rule: whole regions on one side, any source size, nothing held in memory. */
class HeldOutSplitTest {

    /** A source of any length whose token at position p is a function of p (nothing stored). */
    static TokenSource positional(long n, boolean concurrent) {
        return new TokenSource() {
            public long tokens() {
                return n;
            }

            public void read(long start, int[] dst, int off, int len) {
                if (start < 0 || start + len > n) {
                    throw new IndexOutOfBoundsException(start + "+" + len);
                }
                for (int i = 0; i < len; i++) {
                    dst[off + i] = token(start + i);
                }
            }

            public boolean concurrentReads() {
                return concurrent;
            }

            public String describe() {
                return "positional(" + n + ")";
            }
        };
    }

    static int token(long p) {
        return (int) (IndexPermutation.mix(p) & 0xFFFF);
    }

    @Test
    void sidesAreWholeRegionsInOrderAndCoverTheStream() {
        int[] all = new int[50_000];
        TokenSource whole = positional(all.length, false);
        whole.read(0, all, 0, all.length);
        TokenSource[] a = HeldOutSplit.split(whole, 0.1, 42), b = HeldOutSplit.split(whole, 0.1, 42);
        long r = HeldOutSplit.regionTokens(all.length);
        assertEquals(64, r);
        int[] train = new int[(int) a[0].tokens()], val = new int[(int) a[1].tokens()];
        a[0].read(0, train, 0, train.length);
        a[1].read(0, val, 0, val.length);
        int t = 0, v = 0;
        for (long reg = 0; reg * r < all.length; reg++) {
            int len = (int) Math.min(r, all.length - reg * r);
            int[] expect = Arrays.copyOfRange(all, (int) (reg * r), (int) (reg * r) + len);
            if (HeldOutSplit.isHeld(reg, 0.1, 42)) {
                assertArrayEquals(expect, Arrays.copyOfRange(val, v, v + len), "held-out region " + reg);
                v += len;
            } else {
                assertArrayEquals(expect, Arrays.copyOfRange(train, t, t + len), "training region " + reg);
                t += len;
            }
        }
        assertEquals(train.length, t);
        assertEquals(val.length, v);
        double share = (double) val.length / all.length;
        assertTrue(share > 0.06 && share < 0.14, "about 10% held out: " + share);
        int[] again = new int[val.length];
        b[1].read(0, again, 0, again.length);
        assertArrayEquals(val, again, "the same split every time");
        assertTrue(HeldOutSplit.split(whole, 0.1, 43)[1].tokens() != val.length
                || !Arrays.equals(val, readAll(HeldOutSplit.split(whole, 0.1, 43)[1])), "another seed, another split");
    }

    static int[] readAll(TokenSource s) {
        int[] x = new int[(int) s.tokens()];
        s.read(0, x, 0, x.length);
        return x;
    }

    @Test
    void aSourceOfMoreThan2To31TokensSplitsAndSamples() {
        long n = 3L << 31; // 6.4e9 tokens, none stored
        TokenSource whole = positional(n, true);
        TokenSource[] s = HeldOutSplit.split(whole, 0.01, 7);
        long r = HeldOutSplit.regionTokens(n);
        assertEquals(1L << 20, r);
        assertEquals(n, s[0].tokens() + s[1].tokens());
        assertTrue(s[1].tokens() > 40 * r && s[1].tokens() < 80 * r, "about 1% held out: " + s[1].tokens());
        // the k-th held-out region is the k-th region the rule holds out, read from its place in the source
        long k = 0;
        SplittableRandom rnd = new SplittableRandom(3);
        for (long reg = 0; reg * r < n; reg++) {
            if (HeldOutSplit.isHeld(reg, 0.01, 7)) {
                long in = rnd.nextLong(r - 100);
                int[] got = new int[100];
                s[1].read(k * r + in, got, 0, 100);
                for (int i = 0; i < 100; i++) {
                    assertEquals(token(reg * r + in + i), got[i], "held-out region " + reg);
                }
                k++;
            }
        }
        // the sampler cuts windows beyond 2^31 and reads each row's window concurrently, in place
        int seq = 4096;
        Sampler smp = new Sampler(List.of(s[0]), List.of("big"), new double[] {1}, seq, 5, 0, false);
        assertEquals((s[0].tokens() - 1) / seq, smp.samples());
        Sampler.Batch b = smp.batch(1000, 1000L * 64, 64, 1, 2);
        int[] window = new int[seq + 1];
        boolean beyond = false;
        for (int row = 0; row < b.rows(); row++) {
            long[] w = smp.window(1000L * 64 + 32 + row);
            beyond |= w[1] * seq > Integer.MAX_VALUE;
            s[0].read(w[1] * seq, window, 0, seq + 1);
            assertArrayEquals(Arrays.copyOf(window, seq), Arrays.copyOfRange(b.tokens(), row * seq, (row + 1) * seq));
            assertArrayEquals(Arrays.copyOfRange(window, 1, seq + 1),
                    Arrays.copyOfRange(b.targets(), row * seq, (row + 1) * seq));
        }
        assertTrue(beyond, "some windows lie beyond token 2^31");
    }

    @Test
    void concurrentWindowReadsGiveTheSequentialBatch() {
        AtomicInteger threads = new AtomicInteger();
        TokenSource seq = positional(1 << 20, false), conc = new TokenSource() {
            final TokenSource p = positional(1 << 20, true);

            public long tokens() {
                return p.tokens();
            }

            public void read(long start, int[] dst, int off, int len) {
                if (Thread.currentThread().getName().equals("ouro-window-read")) {
                    threads.incrementAndGet();
                }
                p.read(start, dst, off, len);
            }

            public boolean concurrentReads() {
                return true;
            }

            public String describe() {
                return "concurrent";
            }
        };
        Sampler a = new Sampler(seq, 128, 24, 9, 0), b = new Sampler(conc, 128, 24, 9, 0);
        for (long step = 0; step < 20; step++) {
            assertArrayEquals(a.batch(step, 0, 1).tokens(), b.batch(step, 0, 1).tokens());
            assertArrayEquals(a.batch(step, 1, 3).targets(), b.batch(step, 1, 3).targets());
        }
        assertEquals(20 * (24 + 8), threads.get(), "every window read on the read pool");
    }
}
