package io.ouro.worker.data;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {

    static int[] stream(int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = i;
        }
        return t;
    }

    @Test
    void permutationIsABijectionForAnySize() {
        for (long n : new long[] {1, 2, 3, 7, 64, 100, 1000, 4097}) {
            IndexPermutation p = new IndexPermutation(n, 42);
            Set<Long> seen = new HashSet<>();
            for (long i = 0; i < n; i++) {
                long v = p.apply(i);
                assertTrue(v >= 0 && v < n, "image out of range");
                assertTrue(seen.add(v), "n=" + n + ": " + v + " appears twice");
            }
        }
        long same = 0;
        IndexPermutation a = new IndexPermutation(1000, 1), b = new IndexPermutation(1000, 2);
        for (long i = 0; i < 1000; i++) {
            same += a.apply(i) == b.apply(i) ? 1 : 0;
        }
        assertTrue(same < 20, "two seeds give nearly the same order: " + same + " fixed points");
    }

    @Test
    void windowsAreShiftedPairsOfTheStream() {
        Sampler s = new Sampler(new ArrayTokenSource(stream(1001), "ramp"), 10, 4, 7, 0);
        assertEquals(100, s.samples());
        Sampler.Batch b = s.batch(3, 0, 1);
        for (int r = 0; r < 4; r++) {
            int start = b.tokens()[r * 10];
            assertEquals(0, start % 10, "windows start at multiples of seqLen");
            for (int i = 0; i < 10; i++) {
                assertEquals(start + i, b.tokens()[r * 10 + i]);
                assertEquals(start + i + 1, b.targets()[r * 10 + i]);
            }
        }
    }

    @Test
    void ranksSplitTheGlobalBatchExactly() {
        Sampler s = new Sampler(new ArrayTokenSource(stream(5000), "ramp"), 16, 7, 3, 1);
        for (long step = 0; step < 5; step++) {
            int[] whole = s.batch(step, 0, 1).tokens();
            for (int w = 2; w <= 5; w++) {
                int[] joined = new int[0];
                for (int r = 0; r < w; r++) {
                    int[] part = s.batch(step, r, w).tokens();
                    int[] j = Arrays.copyOf(joined, joined.length + part.length);
                    System.arraycopy(part, 0, j, joined.length, part.length);
                    joined = j;
                }
                assertArrayEquals(whole, joined, "W=" + w + " step " + step);
            }
        }
    }

    @Test
    void everyWindowOncePerEpochAndANewOrderNextEpoch() {
        Sampler s = new Sampler(new ArrayTokenSource(stream(12 * 8 + 1), "ramp"), 8, 4, 9, 0);
        assertEquals(12, s.samples());
        Set<Integer> epoch0 = new HashSet<>();
        int[] order0 = new int[12], order1 = new int[12];
        for (int step = 0; step < 3; step++) {
            int[] t = s.batch(step, 0, 1).tokens();
            for (int r = 0; r < 4; r++) {
                assertTrue(epoch0.add(t[r * 8]), "window repeated within an epoch");
                order0[step * 4 + r] = t[r * 8];
            }
        }
        assertEquals(12, epoch0.size());
        for (int step = 3; step < 6; step++) {
            int[] t = s.batch(step, 0, 1).tokens();
            for (int r = 0; r < 4; r++) {
                order1[(step - 3) * 4 + r] = t[r * 8];
            }
        }
        assertNotEquals(Arrays.toString(order0), Arrays.toString(order1), "each epoch has its own order");
        assertEquals(0, s.epochAt(2));
        assertEquals(1, s.epochAt(3));
    }

    @Test
    void tooShortACorpusIsAClearError() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> new Sampler(new ArrayTokenSource(stream(5), "tiny corpus"), 8, 1, 1, 0));
        assertTrue(e.getMessage().contains("tiny corpus"), e.getMessage());
    }

    @Test
    void prefetcherGivesTheSameBatchesAndTimesOutOnAStuckSource() {
        Sampler s = new Sampler(new ArrayTokenSource(stream(3000), "ramp"), 12, 3, 5, 0);
        try (Prefetcher p = new Prefetcher(s, 1, 2, 4, 10, 2, 5000)) {
            for (long step = 4; step < 10; step++) {
                assertArrayEquals(s.batch(step, 1, 2).tokens(), p.take().tokens());
            }
            assertThrows(IllegalStateException.class, p::take);
        }
        TokenSource stuck = new TokenSource() {
            public long tokens() {
                return 1000;
            }

            public void read(long start, int[] dst, int off, int len) {
                try {
                    Thread.sleep(10_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }

            public String describe() {
                return "stuck";
            }
        };
        try (Prefetcher p = new Prefetcher(new Sampler(stuck, 8, 1, 1, 0), 0, 1, 0, 5, 1, 200)) {
            var e = assertThrows(IllegalStateException.class, p::take);
            assertTrue(e.getMessage().contains("not read within 200 ms"), e.getMessage());
        }
    }

    @Test
    void mixtureGivesEachSourceItsShareInEveryPrefix() {
        java.util.List<TokenSource> src = java.util.List.of(new ArrayTokenSource(stream(40001), "a"),
                new ArrayTokenSource(stream(2001), "b"), new ArrayTokenSource(stream(801), "c"));
        double[] w = {0.7, 0.2, 0.1};
        Sampler s = new Sampler(src, java.util.List.of("a", "b", "c"), w, 8, 3, 1, false);
        long[] next = new long[3];
        for (long g = 0; g < 20_000; g++) {
            long[] p = s.pick(g);
            int j = (int) p[0];
            assertEquals(next[j], p[1], "source " + j + " takes its samples in order");
            next[j]++;
            for (int k = 0; k < 3; k++) {
                assertEquals(next[k], s.count(k, g + 1), "closed-form count of source " + k + " after " + (g + 1));
                assertTrue(Math.abs(next[k] - (g + 1) * w[k]) <= 2, "share of source " + k + " after " + (g + 1));
            }
        }
        // source c (100 windows) wraps into a new epoch with a new order; with stop it is an error
        Sampler stop = new Sampler(src, java.util.List.of("a", "b", "c"), w, 8, 3, 1, true);
        var e = assertThrows(IllegalStateException.class, () -> {
            for (long g = 0; g < 20_000; g++) {
                stop.window(g);
            }
        });
        assertTrue(e.getMessage().contains("source c") && e.getMessage().contains("on_exhausted: stop"), e.getMessage());
    }
}
