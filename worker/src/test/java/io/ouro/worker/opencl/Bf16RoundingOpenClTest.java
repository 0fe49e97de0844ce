package io.ouro.worker.opencl;

import io.ouro.worker.TestDevice;
import io.ouro.worker.model.Bf16;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * bfloat16 rounding bit for bit: crafted float32 bit patterns (ties to even both ways and their neighbours, carries
 * into the next exponent, the largest finite float, infinities, NaNs quiet and signalling with payloads high and low,
 * signed zeros, subnormals) through every OpenCL kernel that rounds to bfloat16, each compared with the one Java
 * rounding function, {@link Bf16#bits}, whose own answers on the crafted values are checked first against the IEEE
 * rule written out by hand. The kernels: the copy into a bfloat16 stash ({@code bf16.cl}, OURO_STASH16, read back
 * through the copy out, which widens exactly) and the tensor-core GEMM's operand loader ({@code gemm_tc.cl}: the
 * staging that rounds A and B into local memory and the fragment loads from there, read back as the raw fragment
 * registers through {@link GemmOps#tensorFragments}). In OpenCL C all of them call one function, ouro_to_bf16.
 */
class Bf16RoundingOpenClTest {

    /** {float32 bits, bfloat16 bits by round-to-nearest-even with NaN quieted}, written out by hand. */
    static final int[][] CRAFTED = {
            {0x3F800000, 0x3F80}, // 1
            {0xBF800000, 0xBF80}, // -1
            {0x3F808000, 0x3F80}, // exact tie, kept bit even: down
            {0x3F818000, 0x3F82}, // exact tie, kept bit odd: up
            {0xBF808000, 0xBF80}, // the same negative
            {0xBF818000, 0xBF82},
            {0x3F807FFF, 0x3F80}, // just below a tie: down
            {0x3F808001, 0x3F81}, // just above a tie: up
            {0x3F817FFF, 0x3F81},
            {0x3F818001, 0x3F82},
            {0xBF808001, 0xBF81},
            {0x3FFF8000, 0x4000}, // tie with odd mantissa 0x7F: carries into the next exponent (1.99.. -> 2)
            {0x3FFFFFFF, 0x4000}, // just below 2: up into the next exponent
            {0xBFFFFFFF, 0xC000},
            {0x7F7F7FFF, 0x7F7F}, // just below the tie at bfloat16's largest finite: stays finite
            {0x7F7F8000, 0x7F80}, // that tie (odd): overflows to +inf
            {0x7F7FFFFF, 0x7F80}, // the largest finite float: +inf
            {0xFF7FFFFF, 0xFF80}, // the most negative finite float: -inf
            {0x7F800000, 0x7F80}, // +inf
            {0xFF800000, 0xFF80}, // -inf
            {0x7FC00000, 0x7FC0}, // the quiet NaN
            {0xFFC00000, 0xFFC0}, // negative quiet NaN
            {0x7F800001, 0x7FC0}, // signalling NaN, payload in the lowest bit only (dropping it would give +inf)
            {0x7F80FFFF, 0x7FC0}, // signalling NaN, payload in the low 16 bits only (rounding would carry)
            {0xFF800001, 0xFFC0}, // negative signalling NaN, low payload
            {0x7FA00000, 0x7FE0}, // signalling NaN, payload in the kept bits: kept, quieted
            {0x7FBFFFFF, 0x7FFF}, // signalling NaN, all payload bits: the kept ones stay, quiet bit set
            {0x7FFFFFFF, 0x7FFF}, // quiet NaN, all bits (rounding would carry into the sign)
            {0xFFFFFFFF, 0xFFFF},
            {0x00000000, 0x0000}, // +0
            {0x80000000, 0x8000}, // -0
            {0x00000001, 0x0000}, // the smallest subnormal: to +0
            {0x80000001, 0x8000}, // its negative: to -0
            {0x00008000, 0x0000}, // subnormal tie, even: down to 0
            {0x00018000, 0x0002}, // subnormal tie, odd: up
            {0x00008001, 0x0001}, // just above a subnormal tie: the smallest bfloat16 subnormal
            {0x00010000, 0x0001}, // the smallest bfloat16 subnormal, exact
            {0x007F7FFF, 0x007F}, // the largest bfloat16 subnormal's neighbourhood: down
            {0x007FFFFF, 0x0080}, // the largest float32 subnormal: up to the smallest normal
            {0x807FFFFF, 0x8080},
            {0x00800000, 0x0080}, // the smallest normal
            {0x3EAAAAAB, 0x3EAB}, // 1/3: up
            {0x3DCCCCCD, 0x3DCD}, // 0.1: up
    };

    static final int STASH = 4096, PARAMS = 70_000, ACT = 200_000, COPY_SLOT_VALUES = 50_000;
    static OpenClOps ops;

    @BeforeAll
    static void open() {
        ops = new OpenClOps(OpenClDevices.select(DeviceSpec.parse(TestDevice.spec())), new int[] {PARAMS}, ACT, 1, 1,
                new int[] {STASH}, true, MatmulPrecision.parse(System.getProperty("ouro.test.matmul", "fp32")));
        // the tensor-core GEMM's activation copy slots, past every operand and dump below
        ops.setActivationCopy(new int[] {100_000, 125_000, 150_000, 175_000}, COPY_SLOT_VALUES);
    }

    @AfterAll
    static void close() {
        ops.close();
    }

    /** The crafted values, then random ones (random bits: every exponent, NaNs included; and near-ties). */
    static int[] values(int count) {
        int[] v = new int[count];
        SplittableRandom rng = new SplittableRandom(7);
        for (int i = 0; i < count; i++) {
            if (i < CRAFTED.length) {
                v[i] = CRAFTED[i][0];
            } else if (i % 3 == 0) {
                v[i] = rng.nextInt();
            } else {
                // a tie or a neighbour of one, at a random magnitude and sign
                v[i] = (rng.nextInt() & 0xFFFF0000) | (0x8000 + rng.nextInt(-2, 3));
            }
        }
        return v;
    }

    @Test
    void theJavaFunctionRoundsTheCraftedValuesToNearestEven() {
        for (int[] c : CRAFTED) {
            assertEquals(c[1], Bf16.bits(Float.intBitsToFloat(c[0])) & 0xFFFF,
                    String.format("Bf16.bits(0x%08X)", c[0]));
        }
    }

    @Test
    void oneRoundingFunctionInTheOpenClProgram() {
        String src = ClKernels.source();
        Matcher def = Pattern.compile("ushort\\s+ouro_to_bf16\\s*\\(").matcher(src);
        int defs = 0;
        while (def.find()) {
            defs++;
        }
        assertEquals(1, defs, "ouro_to_bf16 is defined once");
        int at = src.indexOf("ushort ouro_to_bf16(");
        String body = src.substring(at, src.indexOf("\n}\n", at));
        // the rounding's constant (0x7FFF, not a prefix of a longer one) appears only inside it
        Pattern rounding = Pattern.compile("0x7FFFu?(?![0-9A-Fa-f])");
        assertEquals(1, rounding.matcher(src).results().count(), "one rounding: 0x7FFF outside ouro_to_bf16:\n" + body);
        assertTrue(rounding.matcher(body).find(), body);
        assertTrue(count(src, "ouro_to_bf16(") >= 3, "the stash copy and the operand loader call it");
    }

    static int count(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) {
            n++;
        }
        return n;
    }

    @Test
    void theStashCopyRoundsBitForBit() {
        int n = 3000, src = 1000, back = 10_000;
        int[] v = values(n);
        float[] act = ops.host(Buffer.ACT);
        for (int i = 0; i < n; i++) {
            act[src + i] = Float.intBitsToFloat(v[i]);
            if (Float.floatToRawIntBits(act[src + i]) != v[i]) {
                fail(String.format("the JVM changed 0x%08X to 0x%08X on the way in", v[i],
                        Float.floatToRawIntBits(act[src + i])));
            }
        }
        ops.upload(Buffer.ACT);
        ops.startProfile();
        // into stash buffer 0 at an odd 16-bit offset, then out again, widened exactly
        ops.copyAcross(1, 5, 0, src, n, true);
        ops.copyAcross(0, back, 1, 5, n, true);
        ops.download(Buffer.ACT);
        assertEquals(2L, ops.profile().get(DeviceOp.CL_STASH16.profileName())[1], "the bf16 stash copy ran");
        float[] out = ops.read(Buffer.ACT);
        int wrong = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < n; i++) {
            int expected = (Bf16.bits(Float.intBitsToFloat(v[i])) & 0xFFFF) << 16;
            int got = Float.floatToRawIntBits(out[back + i]);
            if (got != expected) {
                if (wrong++ < 10) {
                    first.append(String.format("%n  0x%08X -> 0x%08X, Bf16.bits 0x%08X", v[i], got, expected));
                }
            }
        }
        assertEquals(0, wrong, "stash copy: values not rounded as Bf16.bits" + first);
    }
    /**
     * The tensor-core GEMM's operand loader: A (130 x 50) and B (100 x 50) hold the crafted and random values; the
     * kernel stages them (rounding each once) into its swizzled, double-buffered local tiles and loads every lane's
     * fragments as it would for the instruction, and the hook writes those registers out. Each register must be the
     * bfloat16 pair, by {@link Bf16#bits}, of the two elements the PTX ISA's fragment table puts there (zero past the
     * matrix): the rounding bit for bit and the fragment layout at once, with A read k-contiguous and B transposed,
     * then the other way round (the two staging paths). Both with the operands fetched as fp32 and rounded as they are
     * staged, and with each rounded once into an activation copy (ouro_act_bf16) the kernel stages as it is.
     */
    @Test
    void theTensorCoreOperandLoaderRoundsBitForBit() {
        int m = 130, n = 100, kk = 50, aBase = 1000, bBase = 20_000, dst = 40_000;
        int[] v = values(m * kk + n * kk);
        for (boolean copies : new boolean[] {false, true}) {
            ops.useActivationCopy(copies);
            try {
                operandLoader(copies, m, n, kk, aBase, bBase, dst, v);
            } finally {
                ops.useActivationCopy(true);
            }
        }
    }

    void operandLoader(boolean copies, int m, int n, int kk, int aBase, int bBase, int dst, int[] v) {
        for (boolean aTransposed : new boolean[] {false, true}) {
            // A(r, k) = v[r * kk + k], B(j, k) = v[m * kk + j * kk + k], stored k-contiguous or transposed
            float[] act = ops.host(Buffer.ACT);
            java.util.Arrays.fill(act, 0, ACT, 0f);
            for (int r = 0; r < m; r++) {
                for (int k = 0; k < kk; k++) {
                    act[aBase + (aTransposed ? k * m + r : r * kk + k)] = Float.intBitsToFloat(v[r * kk + k]);
                }
            }
            for (int j = 0; j < n; j++) {
                for (int k = 0; k < kk; k++) {
                    act[bBase + (aTransposed ? j * kk + k : k * n + j)] = Float.intBitsToFloat(v[m * kk + j * kk + k]);
                }
            }
            ops.upload(Buffer.ACT);
            ops.startProfile();
            ops.tensorFragments(dst, Buffer.ACT, aBase, aTransposed ? 1 : kk, aTransposed ? m : 1, Buffer.ACT, bBase,
                    aTransposed ? kk : 1, aTransposed ? 1 : n, m, n, kk);
            String name = ops.tensorCores() ? OpenClOps.TC_NAME : OpenClOps.TC_EMULATED_NAME;
            assertEquals(1L, ops.profile().get(name)[1], "the tensor-core kernel ran (" + name + ")");
            assertEquals(copies ? 2L : 0L, KernelAsserts.launches(ops, DeviceOp.CL_ACT_BF16),
                    "activation copies of A and B, or none");
            ops.download(Buffer.ACT);
            StringBuilder first = new StringBuilder();
            int wrong = wrongRegisters(ops.read(Buffer.ACT), dst, v, m, n, kk, first);
            assertEquals(0, wrong, (copies ? "activation copies, " : "") + "tensor-core operands "
                    + (aTransposed ? "A transposed" : "B transposed") + ": "
                    + wrong + " of " + GemmOps.tensorFragmentWords(m, n, kk)
                    + " registers not as Bf16.bits and the fragment table" + first);
        }
    }

    /**
     * The weights' bfloat16 copy (train.matmul bf16_tensor), with A from its activation copy: B is a parameter segment holding the crafted and random
     * values at an odd offset (so 16-bit values straddle the copy's floats), k-contiguous as the forward reads a
     * weight and transposed as the input gradient does. The copy is made by its own kernel (ouro_weight_bf16) and the
     * GEMM stages the copied pairs as they are, so the fragment registers must again be Bf16.bits of the weights:
     * the copy's rounding and the fetch from it, bit for bit. The copy is made once per change of the weights: not
     * again for a second product, again after the weights are uploaded anew (the values reversed), and again after a
     * device op wrote them.
     */
    @Test
    void theWeightCopyRoundsBitForBit() {
        int m = 130, n = 100, kk = 50, aBase = 1000, wOff = 7, dst = 40_000;
        int[] v = values(m * kk + n * kk);
        ops.useWeightCopy(true);
        try {
            for (boolean transposed : new boolean[] {false, true}) {
                for (int round = 0; round < 3; round++) {
                    if (round > 0) {
                        // new weights (the values reversed, then back): the copy is stale
                        for (int i = m * kk, j = m * kk + n * kk - 1; i < j; i++, j--) {
                            int t = v[i];
                            v[i] = v[j];
                            v[j] = t;
                        }
                    }
                    float[] act = ops.host(Buffer.ACT);
                    java.util.Arrays.fill(act, 0, ACT, 0f);
                    for (int r = 0; r < m; r++) {
                        for (int k = 0; k < kk; k++) {
                            act[aBase + r * kk + k] = Float.intBitsToFloat(v[r * kk + k]);
                        }
                    }
                    ops.upload(Buffer.ACT);
                    float[] w = new float[n * kk];
                    for (int j = 0; j < n; j++) {
                        for (int k = 0; k < kk; k++) {
                            w[transposed ? k * n + j : j * kk + k] = Float.intBitsToFloat(v[m * kk + j * kk + k]);
                        }
                    }
                    if (round < 2) {
                        // from the host
                        System.arraycopy(w, 0, ops.host(Buffer.PARAMS), wOff, w.length);
                        ops.upload(Buffer.PARAMS);
                    } else {
                        // by a device op (the exchange buffer's range in, as ZeRO-1's all-gather writes parameters)
                        ops.writeRange(false, 0, wOff, w, 0, w.length);
                    }
                    ops.startProfile();
                    ops.tensorFragments(dst, Buffer.ACT, aBase, kk, 1, Buffer.PARAMS, wOff, transposed ? 1 : kk,
                            transposed ? n : 1, m, n, kk);
                    ops.tensorFragments(dst, Buffer.ACT, aBase, kk, 1, Buffer.PARAMS, wOff, transposed ? 1 : kk,
                            transposed ? n : 1, m, n, kk);
                    String name = ops.tensorCores() ? OpenClOps.TC_NAME : OpenClOps.TC_EMULATED_NAME;
                    assertEquals(2L, ops.profile().get(name)[1], "the tensor-core kernel ran twice (" + name + ")");
                    assertEquals(1L, KernelAsserts.launches(ops, DeviceOp.CL_WEIGHT_BF16),
                            "the weight copy was made once for the changed weights, round " + round);
                    assertEquals(1L, KernelAsserts.launches(ops, DeviceOp.CL_ACT_BF16),
                            "A's activation copy made once for both");
                    ops.download(Buffer.ACT);
                    StringBuilder first = new StringBuilder();
                    int wrong = wrongRegisters(ops.read(Buffer.ACT), dst, v, m, n, kk, first);
                    assertEquals(0, wrong, "weight copy, " + (transposed ? "transposed" : "k-contiguous") + ", round "
                            + round + ": " + wrong + " registers not as Bf16.bits of the weights" + first);
                }
            }
        } finally {
            ops.useWeightCopy(false);
        }
    }

    /**
     * Registers of {@link GemmOps#tensorFragments}' dump at out[dst..] that are not the bfloat16 pairs, by
     * {@link Bf16#bits}, of A (m x kk) = v[r * kk + k] and B (n x kk) = v[m * kk + j * kk + k] where the PTX ISA's
     * fragment table puts them (zero past the matrix); the first ten described in {@code first}.
     */
    static int wrongRegisters(float[] out, int dst, int[] v, int m, int n, int kk, StringBuilder first) {
        int words = GemmOps.tensorFragmentWords(m, n, kk), nk = (kk + 31) / 32, bxs = (n + 127) / 128;
        assertTrue(dst + words <= out.length);
        int wrong = 0;
        for (int w = 0; w < words; w++) {
            int q = w % 24, tid = w / 24 % 256, h = w / (24 * 256) % 2, kt = w / (24 * 256 * 2) % nk;
            int blk = w / (24 * 256 * 2 * nk), by = blk / bxs, bx = blk % bxs;
            int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
            int k0 = kt * 32 + h * 16 + 2 * t;
            int expected;
            String what;
            if (q < 16) {
                int mi = q / 4, reg = q % 4;
                int row = by * 128 + (warp & 1) * 64 + 16 * mi + g + (reg & 1) * 8, k = k0 + (reg >> 1) * 8;
                expected = pair(v, row, k, m, kk, 0);
                what = "A(" + row + ", " + k + ")";
            } else {
                int ni = (q - 16) / 2, reg = q % 2;
                int col = bx * 128 + (warp >> 1) * 32 + 8 * ni + g, k = k0 + reg * 8;
                expected = pair(v, col, k, n, kk, m * kk);
                what = "B(" + col + ", " + k + ")";
            }
            int got = Float.floatToRawIntBits(out[dst + w]);
            if (got != expected && wrong++ < 10) {
                first.append(String.format("%n  %s, lane %d of warp %d, register %d: 0x%08X, expected 0x%08X", what,
                        lane, warp, q, got, expected));
            }
        }
        return wrong;
    }

    // the register holding X(r, k) (low half) and X(r, k + 1), X (rows, kk) = v[base + r * kk + k], zero outside
    static int pair(int[] v, int r, int k, int rows, int kk, int base) {
        int lo = r < rows && k < kk ? Bf16.bits(Float.intBitsToFloat(v[base + r * kk + k])) & 0xFFFF : 0;
        int hi = r < rows && k + 1 < kk ? Bf16.bits(Float.intBitsToFloat(v[base + r * kk + k + 1])) & 0xFFFF : 0;
        return lo | hi << 16;
    }
}
