package io.ouro.worker.comm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The ring sums correctly, in the documented order, identically on every rank and every run, and
 * sends exactly its 2(W-1)/W share of the bytes. Ranks are threads of this JVM on 127.0.0.1.
 */
@Timeout(120)
class RingSumAllReduceTest {

    private static final Duration SETUP = Duration.ofSeconds(30);
    private static final Duration IO = Duration.ofSeconds(30);
    private static final int[] SMALL = {0, 1, 2, 3, 4, 5, 6, 7, 13, 100, 1001, 4099};
    private static final int[] LARGE = {65_537, 1_000_003};

    @ParameterizedTest(name = "W={0}")
    @ValueSource(ints = {1, 2, 3, 4, 5})
    void sumsInRingOrderOnEveryRankForUnevenLengths(int world) {
        // 3-float chunks: many frames per segment, chunks that do not divide the segments.
        checkSizes(world, 12, SMALL);
        // default chunks: a few MB per rank
        checkSizes(world, RingConfig.DEFAULT_CHUNK_BYTES, concat(SMALL, LARGE));
    }

    private static void checkSizes(int world, int chunkBytes, int[] sizes) {
        List<RingAllReduce> ranks = LocalRing.open(world, chunkBytes, SETUP, IO);
        try {
            for (int len : sizes) {
                float[][] inputs = inputs(world, len, 1000L * world + len);
                float[] expected = ringOrderSum(inputs);
                float[][] first = reduce(ranks, inputs, chunkBytes, true);
                float[][] second = reduce(ranks, inputs, chunkBytes, false);
                double[] tolerance = new double[len];
                double[] exact = exactSum(inputs, tolerance);
                for (int r = 0; r < world; r++) {
                    assertArrayEquals(expected, first[r],
                            "W=" + world + " len=" + len + " rank " + r + ": bits differ from the documented ring order");
                    assertArrayEquals(first[0], second[r], "W=" + world + " len=" + len + " rank " + r + ": second run differs");
                }
                for (int i = 0; i < len; i++) {
                    double err = Math.abs(first[0][i] - exact[i]);
                    if (err > tolerance[i]) {
                        fail("W=" + world + " len=" + len + " element " + i + ": " + first[0][i] + " vs float64 sum "
                                + exact[i] + ", error " + err + " > bound " + tolerance[i]);
                    }
                }
            }
        } finally {
            LocalRing.closeAll(ranks);
        }
    }

    /** Runs one all-reduce on copies of the inputs and checks the bytes each rank sent and received. */
    private static float[][] reduce(List<RingAllReduce> ranks, float[][] inputs, int chunkBytes, boolean checkBytes) {
        int world = ranks.size();
        int len = inputs[0].length;
        CommStats[] before = new CommStats[world];
        for (int r = 0; r < world; r++) {
            before[r] = ranks.get(r).stats();
        }
        List<float[]> out = LocalRing.parallel(world, r -> {
            // the range sits inside a larger buffer: off and len are honoured, the rest untouched
            float[] buf = new float[len + 5];
            Arrays.fill(buf, -7f);
            System.arraycopy(inputs[r], 0, buf, 3, len);
            ranks.get(r).allReduceSum(buf, 3, len);
            for (int i : new int[] {0, 1, 2, len + 3, len + 4}) {
                assertEquals(-7f, buf[i], "rank " + r + " wrote outside [off, off+len)");
            }
            return Arrays.copyOfRange(buf, 3, 3 + len);
        });
        if (checkBytes) {
            int chunk = chunkBytes / 4;
            for (int r = 0; r < world; r++) {
                CommStats now = ranks.get(r).stats();
                long[] seg = segmentLengths(len, world);
                long sentFloats = 0;
                long recvFloats = 0;
                long sentFrames = 0;
                if (world > 1) {
                    // reduce-scatter: every segment but r+1 leaves rank r; all-gather: every segment but r+2
                    for (int s = 0; s < world; s++) {
                        if (s != (r + 1) % world) {
                            sentFloats += seg[s];
                            sentFrames += (seg[s] + chunk - 1) / chunk;
                        }
                        if (s != (r + 2) % world) {
                            sentFloats += seg[s];
                            sentFrames += (seg[s] + chunk - 1) / chunk;
                        }
                        if (s != r) {
                            recvFloats += seg[s];
                        }
                        if (s != (r + 1) % world) {
                            recvFloats += seg[s];
                        }
                    }
                }
                assertEquals(4 * sentFloats, now.payloadBytesSent() - before[r].payloadBytesSent(),
                        "W=" + world + " len=" + len + " rank " + r + ": payload bytes sent");
                assertEquals(4 * recvFloats, now.payloadBytesReceived() - before[r].payloadBytesReceived(),
                        "W=" + world + " len=" + len + " rank " + r + ": payload bytes received");
                assertEquals(RingAllReduce.HEADER_BYTES * sentFrames, now.framingBytesSent() - before[r].framingBytesSent(),
                        "W=" + world + " len=" + len + " rank " + r + ": framing bytes sent");
                if (len % world == 0) {
                    assertEquals(2L * (world - 1) * len / world * 4, now.payloadBytesSent() - before[r].payloadBytesSent(),
                            "even split: 2(W-1)/W of the buffer");
                }
            }
        }
        return out.toArray(new float[0][]);
    }

    @Test
    void ringOrderIsObservableInTheBits() {
        // The bit-exact check above only means something if another order would give other bits.
        float[][] in = inputs(4, 10_000, 5);
        float[] ring = ringOrderSum(in);
        int differ = 0;
        for (int i = 0; i < ring.length; i++) {
            float rev = ((in[3][i] + in[2][i]) + in[1][i]) + in[0][i];
            if (Float.floatToRawIntBits(rev) != Float.floatToRawIntBits(ring[i])) {
                differ++;
            }
        }
        assertTrue(differ > 100, "only " + differ + " of 10000 sums depend on the order");
    }

    @Test
    void meanIsTheRingSumDividedByW() {
        int world = 3;
        int len = 10_007;
        List<RingAllReduce> ranks = LocalRing.open(world, 4096, SETUP, IO);
        try {
            float[][] in = inputs(world, len, 11);
            float[] sum = ringOrderSum(in);
            List<float[]> out = LocalRing.parallel(world, r -> {
                float[] b = in[r].clone();
                ranks.get(r).allReduceMean(b, 0, len);
                return b;
            });
            float[] expected = new float[len];
            for (int i = 0; i < len; i++) {
                expected[i] = sum[i] / 3f;
            }
            for (int r = 0; r < world; r++) {
                assertArrayEquals(expected, out.get(r), "rank " + r);
            }
        } finally {
            LocalRing.closeAll(ranks);
        }
    }

    @Test
    void bucketsSubmittedInOrderAreEachReducedInRingOrder() {
        int world = 4;
        int[] bounds = {0, 3, 1000, 1001, 50_000, 50_002, 123_457};
        List<RingAllReduce> ranks = LocalRing.open(world, 8192, SETUP, IO);
        try {
            int len = bounds[bounds.length - 1];
            float[][] in = inputs(world, len, 21);
            List<float[]> out = LocalRing.parallel(world, r -> {
                float[] b = in[r].clone();
                List<CompletableFuture<Void>> pending = new ArrayList<>();
                // buckets handed over last-to-first, as a backward pass produces them
                for (int k = bounds.length - 2; k >= 0; k--) {
                    pending.add(ranks.get(r).submit(RingAllReduce.Op.SUM, b, bounds[k], bounds[k + 1] - bounds[k]));
                }
                CompletableFuture.allOf(pending.toArray(new CompletableFuture[0])).join();
                return b;
            });
            for (int k = 0; k + 1 < bounds.length; k++) {
                float[][] bucket = new float[world][];
                for (int r = 0; r < world; r++) {
                    bucket[r] = Arrays.copyOfRange(in[r], bounds[k], bounds[k + 1]);
                }
                float[] expected = ringOrderSum(bucket);
                for (int r = 0; r < world; r++) {
                    assertArrayEquals(expected, Arrays.copyOfRange(out.get(r), bounds[k], bounds[k + 1]),
                            "bucket " + k + " rank " + r);
                }
            }
            assertEquals(bounds.length - 1, ranks.get(0).stats().calls());
        } finally {
            LocalRing.closeAll(ranks);
        }
    }

    // ------------------------------------------------------------ an independent model of the result

    /** Random floats over 16 binades, so the order of summation shows in the bits. */
    static float[][] inputs(int world, int len, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[][] x = new float[world][len];
        for (int r = 0; r < world; r++) {
            for (int i = 0; i < len; i++) {
                x[r][i] = (float) (rng.nextGaussian() * Math.scalb(1.0, rng.nextInt(-8, 8)));
            }
        }
        return x;
    }

    /** The documented order: element i of segment s is ((x_s + x_{s+1}) + ...) + x_{s+W-1}, ranks mod W. */
    static float[] ringOrderSum(float[][] x) {
        int world = x.length;
        int len = x[0].length;
        long[] seg = segmentLengths(len, world);
        float[] out = new float[len];
        int i = 0;
        for (int s = 0; s < world; s++) {
            for (long e = 0; e < seg[s]; e++, i++) {
                float acc = x[s][i];
                for (int j = 1; j < world; j++) {
                    acc += x[(s + j) % world][i];
                }
                out[i] = acc;
            }
        }
        return out;
    }

    /** Float64 sums and the float32 recursive-summation bound (W-1) u sum|x| (u = 2^-24). */
    static double[] exactSum(float[][] x, double[] bound) {
        int len = x[0].length;
        double[] s = new double[len];
        for (int i = 0; i < len; i++) {
            double abs = 0;
            for (float[] row : x) {
                s[i] += row[i];
                abs += Math.abs(row[i]);
            }
            bound[i] = (x.length - 1) * Math.scalb(1.0, -24) * abs * 1.000001;
        }
        return s;
    }

    /** Segment lengths: W contiguous segments, the first len % W one element longer. */
    static long[] segmentLengths(int len, int world) {
        long[] seg = new long[world];
        for (int s = 0; s < world; s++) {
            seg[s] = len / world + (s < len % world ? 1 : 0);
        }
        return seg;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
