package io.ouro.worker.comm;

import io.ouro.worker.model.Bf16;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The bf16 wire: every rank ends with the same bits, those of an independent model of the documented rounding
 * (each partial sum rounded to bfloat16 when sent, the complete sum rounded once by its owner), within the stated
 * bound of the float64 sum, on half the payload bytes of fp32; ranks with different wire dtypes refuse each other.
 */
@Timeout(120)
class RingBf16AllReduceTest {

    private static final Duration T = Duration.ofSeconds(30);
    /** bfloat16 keeps 8 significant bits: a rounding to nearest errs by at most 2^-8 of the value. */
    private static final double U_BF16 = 0x1p-8;
    private static final double U_FP32 = 0x1p-24;

    static List<RingAllReduce> open(int world, int chunkBytes) {
        byte[] secret = RingAllReduce.newSecret();
        return LocalRing.open(world, r -> RingConfig.of(r, world, LocalRing.LOOPBACK, secret).withTimeouts(T, T)
                .withChunkBytes(chunkBytes).withGradientDtype(WireDtype.BF16));
    }

    /**
     * The documented bf16 order for element i of segment s: p = x_s; p = bf16(p) + x_{s+k} (float32) for k = 1 … W-1;
     * result bf16(p).
     */
    static float[] bf16RingOrderSum(float[][] x) {
        int world = x.length, len = x[0].length;
        float[] out = new float[len];
        for (int i = 0; i < len; i++) {
            int s = RingSchedule.segmentOf(len, world, i);
            float p = x[s][i];
            for (int k = 1; k < world; k++) {
                p = Bf16.round(p) + x[(s + k) % world][i];
            }
            out[i] = Bf16.round(p);
        }
        return out;
    }

    /**
     * The bound: W roundings to bf16 (W-1 partial sums, one complete sum) and W-1 float32 additions, each erring by
     * at most its unit roundoff times a partial sum, which is at most Σ|x| grown by the earlier roundings:
     * {@code |result - exact| <= (W·2^-8 + (W-1)·2^-24) · (1 + 2^-8)^W · Σ_r |x_r|}.
     */
    static double bound(int world, double sumAbs) {
        return (world * U_BF16 + (world - 1) * U_FP32) * Math.pow(1 + U_BF16, world) * sumAbs;
    }

    private static float[][] run(List<RingAllReduce> ranks, float[][] in, RingAllReduce.Op op, WireDtype wire) {
        return LocalRing.parallel(ranks.size(), r -> {
            float[] b = in[r].clone();
            ranks.get(r).submit(op, wire, b, 0, b.length, null).join();
            return b;
        }).toArray(new float[0][]);
    }

    @ParameterizedTest(name = "W={0}")
    @ValueSource(ints = {2, 3, 4})
    void everyRankHoldsTheSameBitsWithinTheBoundOnHalfTheBytes(int world) {
        for (int chunkBytes : new int[] {12, RingConfig.DEFAULT_CHUNK_BYTES}) {
            List<RingAllReduce> ranks = open(world, chunkBytes);
            try {
                double worst = 0;
                for (int len : chunkBytes == 12 ? new int[] {1, 2, 7, 13, 1001} : new int[] {4099, 65_537, 1_000_003}) {
                    float[][] in = RingSumAllReduceTest.inputs(world, len, 77L * world + len);
                    float[] expected = bf16RingOrderSum(in);
                    long[] sentBefore = sent(ranks);
                    float[][] bf = run(ranks, in, RingAllReduce.Op.SUM, WireDtype.BF16);
                    long[] sentBf16 = sent(ranks);
                    run(ranks, in, RingAllReduce.Op.SUM, WireDtype.FP32);
                    long[] sentFp32 = sent(ranks);
                    for (int r = 0; r < world; r++) {
                        assertArrayEquals(expected, bf[r], "W=" + world + " len=" + len + " rank " + r
                                + ": bits differ from the documented bf16 rounding");
                        long floats = RingSchedule.payloadFloatsSent(len, world, r);
                        assertEquals(2 * floats, sentBf16[r] - sentBefore[r], "bf16 payload bytes of rank " + r);
                        assertEquals(4 * floats, sentFp32[r] - sentBf16[r], "fp32 payload bytes of rank " + r);
                    }
                    for (int i = 0; i < len; i++) {
                        double exact = 0, abs = 0;
                        for (float[] x : in) {
                            exact += x[i];
                            abs += Math.abs(x[i]);
                        }
                        double err = Math.abs(bf[0][i] - exact), b = bound(world, abs);
                        if (err > b) {
                            fail("W=" + world + " len=" + len + " element " + i + ": " + bf[0][i] + " vs float64 sum "
                                    + exact + ", error " + err + " > bound " + b);
                        }
                        worst = Math.max(worst, err / abs);
                    }
                }
                System.out.printf("bf16 wire W=%d chunk %d B: worst |error| / sum|x| = %.3g = %.3f W·2^-8 (bound %.3f W·2^-8)%n",
                        world, chunkBytes, worst, worst / (world * U_BF16), bound(world, 1) / (world * U_BF16));
            } finally {
                LocalRing.closeAll(ranks);
            }
        }
    }

    @Test
    void reduceScatterAndAllGatherLeaveTheBitsOfTheFullCall() {
        int world = 3, len = 1000;
        List<RingAllReduce> ranks = open(world, 40);
        try {
            float[][] in = RingSumAllReduceTest.inputs(world, len, 9);
            float[] full = run(ranks, in, RingAllReduce.Op.SUM, WireDtype.BF16)[0];
            float[][] rs = run(ranks, in, RingAllReduce.Op.REDUCE_SCATTER, WireDtype.BF16);
            float[][] start = new float[world][len];
            for (int r = 0; r < world; r++) {
                int own = (r + 1) % world;
                int a = RingSchedule.segmentStart(len, world, own), n = RingSchedule.segmentLength(len, world, own);
                assertArrayEquals(Arrays.copyOfRange(full, a, a + n), Arrays.copyOfRange(rs[r], a, a + n),
                        "rank " + r + "'s owned range after the reduce-scatter: rounded once, as in the full call");
                // the all-gather starts from unrounded owned values: every rank, the owner too, must end with the rounded ones
                for (int i = a; i < a + n; i++) {
                    start[r][i] = in[0][i] * 1.0001f;
                }
            }
            float[][] ag = run(ranks, start, RingAllReduce.Op.ALL_GATHER, WireDtype.BF16);
            for (int r = 0; r < world; r++) {
                for (int i = 0; i < len; i++) {
                    assertEquals(Bf16.round(in[0][i] * 1.0001f), ag[r][i], "rank " + r + " element " + i);
                }
            }
        } finally {
            LocalRing.closeAll(ranks);
        }
    }

    @Test
    void anFp32RingRefusesBf16Calls() {
        List<RingAllReduce> ranks = LocalRing.open(2, RingConfig.DEFAULT_CHUNK_BYTES, T, T);
        try {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ranks.get(0).submit(RingAllReduce.Op.SUM, WireDtype.BF16, new float[4], 0, 4, null));
            assertTrue(e.getMessage().contains("wire dtype bf16 on a ring set up for fp32"), e.getMessage());
        } finally {
            LocalRing.closeAll(ranks);
        }
    }

    @Test
    void ranksWithDifferentWireDtypesRefuseEachOther() {
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            byte[] secret = RingAllReduce.newSecret();
            // as in RingAuthAllReduceTest: a rank reports its failed right handshake only once its left one is
            // settled, so neither gives up while the other still waits for the CHALLENGE that names its dtype
            List<String> hookFailures = Collections.synchronizedList(new ArrayList<>());
            RingSetup.hook = LocalRing.settleLeftFirst(2, hookFailures);
            List<Throwable> errors;
            try {
                List<Function<String, List<String>>> gathers = LocalRing.allGather(2, Duration.ofSeconds(10));
                errors = LocalRing.failures(2, r -> () -> RingAllReduce.open(
                        RingConfig.of(r, 2, LocalRing.LOOPBACK, secret)
                                .withTimeouts(Duration.ofSeconds(3), Duration.ofSeconds(1))
                                .withGradientDtype(r == 1 ? WireDtype.BF16 : WireDtype.FP32), gathers.get(r)).close());
            } finally {
                RingSetup.hook = null;
            }
            assertEquals(List.of(), hookFailures);
            for (int r = 0; r < 2; r++) {
                assertInstanceOf(AllReduceException.class, errors.get(r), "rank " + r + " joined a ring of another dtype");
            }
            String m0 = errors.get(0).getMessage(), m1 = errors.get(1).getMessage();
            assertTrue(m0.contains("refusing rank 1 (") && m0.contains("it exchanges gradients in bf16, this rank in fp32")
                    && m0.contains("train.exchange_dtype"), m0);
            assertTrue(m1.contains("refusing rank 0 (") && m1.contains("it exchanges gradients in fp32, this rank in bf16"), m1);
        });
    }

    private static long[] sent(List<RingAllReduce> ranks) {
        return ranks.stream().mapToLong(r -> r.stats().payloadBytesSent()).toArray();
    }
}
