package io.ouro.worker.comm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The halves of the ring that ZeRO-1 uses, with ranges that ranks own: a reduce-scatter leaves each rank's own range
 * holding exactly what the full all-reduce would leave there; an all-gather from the owners' ranges gives every rank
 * every range; several rings (connections per neighbour) run their calls at once and sum like one. Uneven and empty
 * ranges, chunks that do not divide them, W = 2 to 5.
 */
@Timeout(120)
class RingShardedAllReduceTest {

    private static final Duration T = Duration.ofSeconds(30);

    /** W ranges tiling [0, len): cut at the given fractions (empty ranges allowed). */
    static int[][] owned(int len, int world, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] cuts = new int[world + 1];
        cuts[world] = len;
        for (int i = 1; i < world; i++) {
            cuts[i] = r.nextInt(len + 1);
        }
        java.util.Arrays.sort(cuts, 1, world);
        int[][] o = new int[world][];
        for (int i = 0; i < world; i++) {
            o[i] = new int[] {cuts[i], cuts[i + 1] - cuts[i]};
        }
        return o;
    }

    @Test
    void reduceScatterThenAllGatherEqualTheAllReduce() {
        for (int world = 2; world <= 5; world++) {
            List<RingAllReduce> ranks = LocalRing.open(world, 12, T, T);
            try {
                for (int len : new int[] {1, 7, 100, 1001}) {
                    for (long seed = 0; seed < 3; seed++) {
                        int[][] own = owned(len, world, seed * 31 + len);
                        float[][] in = inputs(world, len, seed);
                        float[][] full = run(ranks, in, RingAllReduce.Op.SUM, own);
                        float[][] rs = run(ranks, in, RingAllReduce.Op.REDUCE_SCATTER, own);
                        for (int r = 0; r < world; r++) {
                            int a = own[r][0], n = own[r][1];
                            assertArrayEquals(java.util.Arrays.copyOfRange(full[0], a, a + n),
                                    java.util.Arrays.copyOfRange(rs[r], a, a + n),
                                    "W=" + world + " len=" + len + ": rank " + r + "'s range after the reduce-scatter");
                        }
                        // each rank starts the all-gather with only its own range right
                        float[][] start = new float[world][len];
                        for (int r = 0; r < world; r++) {
                            java.util.Arrays.fill(start[r], Float.NaN);
                            System.arraycopy(rs[r], own[r][0], start[r], own[r][0], own[r][1]);
                        }
                        float[][] ag = run(ranks, start, RingAllReduce.Op.ALL_GATHER, own);
                        for (int r = 0; r < world; r++) {
                            assertArrayEquals(full[r], ag[r], "W=" + world + " len=" + len + ": rank " + r + " after the all-gather");
                        }
                    }
                }
            } finally {
                LocalRing.closeAll(ranks);
            }
        }
    }

    @Test
    void rangesThatDoNotTileTheCallAreRefused() {
        List<RingAllReduce> ranks = LocalRing.open(2, 12, T, T);
        try {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ranks.get(0)
                    .submit(RingAllReduce.Op.REDUCE_SCATTER, new float[10], 0, 10, new int[][] {{0, 4}, {4, 5}}));
            assertEquals("owned ranges cover 9 of 10 elements", e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> ranks.get(0)
                    .submit(RingAllReduce.Op.REDUCE_SCATTER, new float[10], 0, 10, new int[][] {{0, 10}}));
        } finally {
            LocalRing.closeAll(ranks);
        }
    }

    @Test
    void severalConnectionsPerNeighbourSumLikeOne() {
        int world = 3, connections = 3, calls = 7, len = 5000;
        List<List<RingAllReduce>> byConnection = new ArrayList<>();
        for (int c = 0; c < connections; c++) {
            byConnection.add(LocalRing.open(world, 4096, T, T));
        }
        List<RingGroup> groups = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            List<RingAllReduce> mine = new ArrayList<>();
            for (List<RingAllReduce> c : byConnection) {
                mine.add(c.get(r));
            }
            groups.add(RingGroup.of(mine));
        }
        try {
            float[][][] data = new float[calls][][];
            for (int k = 0; k < calls; k++) {
                data[k] = inputs(world, len, 100 + k);
            }
            float[][][] expected = new float[calls][][];
            for (int k = 0; k < calls; k++) {
                expected[k] = run(byConnection.get(0), data[k], RingAllReduce.Op.SUM, null);
            }
            List<Object> out = LocalRing.parallel(world, r -> {
                float[][] mine = new float[calls][];
                List<CompletableFuture<Void>> f = new ArrayList<>();
                for (int k = 0; k < calls; k++) {
                    mine[k] = data[k][r].clone();
                    f.add(groups.get(r).submit(k, RingAllReduce.Op.SUM, mine[k], 0, len, null));
                }
                f.forEach(CompletableFuture::join);
                return mine;
            });
            for (int r = 0; r < world; r++) {
                float[][] got = (float[][]) out.get(r);
                for (int k = 0; k < calls; k++) {
                    assertArrayEquals(expected[k][r], got[k], "call " + k + " on ring " + (k % connections) + ", rank " + r);
                }
            }
            // rank 0's first ring also ran the expected sums
            assertEquals(2L * calls, groups.get(0).stats().calls(), "every call counted once, on its own ring");
        } finally {
            for (RingGroup g : groups) {
                g.close();
            }
        }
    }

    private static float[][] inputs(int world, int len, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[][] in = new float[world][len];
        for (float[] a : in) {
            for (int i = 0; i < len; i++) {
                a[i] = (float) (r.nextGaussian() * Math.exp(r.nextGaussian() * 3));
            }
        }
        return in;
    }

    private static float[][] run(List<RingAllReduce> ranks, float[][] in, RingAllReduce.Op op, int[][] own) {
        int world = ranks.size();
        List<Object> out = LocalRing.parallel(world, r -> {
            float[] buf = in[r].clone();
            ranks.get(r).submit(op, buf, 0, buf.length, own).join();
            return buf;
        });
        float[][] res = new float[world][];
        for (int r = 0; r < world; r++) {
            res[r] = (float[]) out.get(r);
        }
        return res;
    }
}
