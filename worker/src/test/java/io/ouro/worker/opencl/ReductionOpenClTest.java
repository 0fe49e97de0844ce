package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.reference.JavaOps;
import io.ouro.worker.reference.ReferenceKernels;
import io.ouro.worker.step.Region;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.SplittableRandom;

import static io.ouro.worker.opencl.KernelAsserts.slice;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The work-group reductions (reduce.cl, {@link OpenClOps#useReduction}: the GPU default, forced here on pocl) against
 * the Java reference and the translated op they replace, at shapes that are not multiples of the work-group (256
 * items per cross-entropy row, 64 columns of the embedding backward), of its 4-float loads, or of the weight
 * gradient's blocks of 128 rows; each asserts from the profile that the work-group op ran. Tolerances (the worst |e - a| / max(1, |e|)): the sums run in another
 * order than the serial ones (a tree over 256 items, blocks of 128 rows), so they differ in rounding.
 * <ul>
 *   <li>Cross-entropy against Java (which sums the exponentials in double): 2e-6 (measured on pocl: 1.2e-7 at
 *   37 x 49,165). Against the translated op 1e-4: its serial float32 sum of 49,165 exponentials drifts (measured:
 *   the log-sum-exp of ~11 by 4.5e-5, the gradient, that times dce ~ 1-3, by 3.5e-5), the tree of 256 partial sums
 *   does not, so here the twin is the less accurate one.</li>
 *   <li>The weight gradient: 2e-5 (sums of up to 1,000 products of magnitude ~1 in float32; measured: 7.0e-6 against
 *   Java, 4.7e-6 against the translated op at 1,000 x 37), and bit-identical run to run.</li>
 *   <li>The embedding backward over the token index: bit for bit (no tolerance), as it adds each token's rows in the
 *   serial op's order.</li>
 * </ul>
 */
class ReductionOpenClTest {

    /** Parameters; token (and target) ids the buffers hold: more than any test gives an op. */
    static final int PARAMS = 30_000, ROWS = 1100;
    static final int LOGITS = 0, LSE = 1_900_000, CE = 1_900_100, DCE = 1_900_200;
    /** The embedding backward's dh, ROWS rows of up to 2,055, over the regions of the other tests. */
    static final int DH = 0;
    static final int X = 2_000_000, DY = 2_300_000, RSTD = 2_600_000, DX = 2_700_000, SCRATCH = 3_000_000;
    static final int SCRATCH_SIZE = 100_000, ACT = SCRATCH + SCRATCH_SIZE;
    static final String CE_FWD_WG = DeviceOp.CL_CE_FWD_WG.profileName(), CE_BWD_WG = DeviceOp.CL_CE_BWD_WG.profileName(),
            DW_PARTIAL = DeviceOp.CL_RMSNORM_DW_PARTIAL.profileName(), DW_SUM = DeviceOp.CL_RMSNORM_DW_SUM.profileName(),
            EMBED_BY_TOKEN = DeviceOp.CL_EMBED_BWD.profileName(), EMBED_TRANSLATED = DeviceOp.EMBED_BWD.profileName();
    static OpenClOps ops;
    final SplittableRandom rng = new SplittableRandom(23);

    @BeforeAll
    static void open() {
        ops = new OpenClOps(OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec())), PARAMS, ACT,
                1, ROWS);
        ops.setReductionScratch(SCRATCH, SCRATCH_SIZE);
    }

    @AfterAll
    static void close() {
        ops.close();
    }

    /** Rows of a block starting at batch row {@code first}: the targets hit the first, a vector and the tail column. */
    @ParameterizedTest(name = "rows {0}, vocabulary {1}")
    @CsvSource({"3, 1000, 2", "37, 49165, 5", "1, 7, 0"})
    void crossEntropyWithAWorkGroupPerRowMatchesJavaAndTheTranslatedOp(int rows, int vocab, int first) {
        float[] logits = gaussian(rows * vocab, 3), dce = gaussian(rows, 1);
        int[] targets = new int[ROWS];
        for (int i = 0; i < ROWS; i++) {
            targets[i] = rng.nextInt(vocab);
        }
        targets[first] = vocab - 1;
        targets[first + rows - 1] = 0;
        if (rows > 2) {
            targets[first + 1] = -1;
        }

        JavaOps java = new JavaOps(new LoopConfig(vocab, 24, 2, 3, 40, 3, 10_000, 1e-6, 0.1, 0.1, 21));
        Region[] r = java.allocate(new long[]{(long) rows * vocab, rows, rows, rows}, new boolean[4], false);
        java.setBatch(new int[ROWS], targets);
        java.write(r[0], logits);
        java.write(r[3], dce);
        java.crossEntropyForward(r[0], r[1], r[2], first, rows, vocab);
        float[] jLse = java.read(r[1], rows), jCe = java.read(r[2], rows);
        java.crossEntropyBackward(r[0], r[1], r[3], first, rows, vocab);
        float[] jGrad = java.read(r[0], rows * vocab);

        float[][] wg = crossEntropy(true, logits, dce, targets, first, rows, vocab);
        assertEquals(1, ops.profile().get(CE_FWD_WG)[1], "the work-group forward ran");
        assertEquals(1, ops.profile().get(CE_BWD_WG)[1], "the work-group backward ran");
        float[][] translated = crossEntropy(false, logits, dce, targets, first, rows, vocab);
        assertEquals(1, ops.profile().get(DeviceOp.CE_FWD.profileName())[1], "the translated forward ran");

        String shape = " " + rows + "x" + vocab;
        for (float[][] ref : new float[][][]{{jLse, jCe, jGrad}, translated}) {
            String against = ref == translated ? " vs translated" : " vs java";
            double tol = ref == translated ? 1e-4 : 2e-6;
            KernelAsserts.assertClose("work-group", "ce lse" + shape + against, ref[0], 0, wg[0], 0, rows, tol);
            KernelAsserts.assertClose("work-group", "ce" + shape + against, ref[1], 0, wg[1], 0, rows, tol);
            KernelAsserts.assertClose("work-group", "ce gradient" + shape + against, ref[2], 0, wg[2], 0,
                    rows * vocab, tol);
        }
        if (rows > 2) {
            assertEquals(0f, wg[1][1], "an ignored row has no loss");
            assertArrayEquals(new float[vocab], slice(wg[2], vocab, vocab), "nor a gradient");
        }
    }

    /** The weight gradient (added to what the gradient held) in blocks of rows, then over the blocks in order. */
    @ParameterizedTest(name = "rows {0}, width {1}")
    @CsvSource({"129, 2055", "1000, 37", "1, 70"})
    void rmsNormWeightGradientInBlocksMatchesJavaAndTheTranslatedOp(int rows, int width) {
        int wOff = 100, dwOff = 5000;
        float[] x = gaussian(rows * width, 1), dy = gaussian(rows * width, 1), dx = gaussian(rows * width, 1);
        float[] rstd = gaussian(rows, 0.3), w = gaussian(PARAMS, 1), g = gaussian(PARAMS, 0.1);
        for (int i = 0; i < rows; i++) {
            rstd[i] = 1 + Math.abs(rstd[i]);
        }
        float[] jDx = dx.clone(), jDw = Arrays.copyOfRange(g, dwOff, dwOff + width);
        ReferenceKernels.rmsnormBackward(jDx, jDw, 0, dy, x, rstd, w, wOff, rows, width);

        float[][] wg = rmsnormBackward(true, x, dy, dx, rstd, w, g, wOff, dwOff, rows, width);
        assertEquals(1, ops.profile().get(DW_PARTIAL)[1], "the partial sums ran");
        assertEquals(1, ops.profile().get(DW_SUM)[1], "and their sum");
        float[][] again = rmsnormBackward(true, x, dy, dx, rstd, w, g, wOff, dwOff, rows, width);
        float[][] translated = rmsnormBackward(false, x, dy, dx, rstd, w, g, wOff, dwOff, rows, width);
        assertEquals(1, ops.profile().get(DeviceOp.RMSNORM_BWD_DW.profileName())[1], "the translated op ran");

        String shape = " " + rows + "x" + width;
        assertArrayEquals(wg[0], again[0], "the same gradient run to run (a fixed summation order)");
        KernelAsserts.assertClose("work-group", "rmsnorm dw" + shape + " vs java", jDw, 0, wg[0], dwOff, width, 2e-5);
        KernelAsserts.assertClose("work-group", "rmsnorm dw" + shape + " vs translated", translated[0], dwOff, wg[0],
                dwOff, width, 2e-5);
        KernelAsserts.assertClose("work-group", "rmsnorm dx" + shape + " vs java", jDx, 0, wg[1], 0, rows * width, 1e-5);
        KernelAsserts.assertClose("work-group", "gradients outside dw", g, 0, wg[0], 0, dwOff, 0);
        KernelAsserts.assertClose("work-group", "gradients past dw", g, dwOff + width, wg[0], dwOff + width,
                PARAMS - dwOff - width, 0);
    }

    /**
     * The embedding backward over the token index, an item per (column, distinct token), against the serial Java op and
     * the translated one, bit for bit: each token's rows are added in row order, as both of them add them. The token
     * buffer holds ROWS ids, more than the op is given; the rows past it carry a token in use and one used nowhere
     * else, with dh values that would show if they were added. "mixed": random tokens (repeated ones) of which one
     * appears once and token 0 never; "same": every row the same token.
     */
    @ParameterizedTest(name = "rows {0}, width {1}, vocabulary {2}, {3}")
    @CsvSource({"1, 7, 3, mixed", "37, 2055, 11, mixed", "1000, 70, 300, mixed", "37, 2055, 11, same",
            "1000, 7, 300, same"})
    void embeddingBackwardByTokenEqualsTheSerialOpBitForBit(int rows, int width, int vocab, String pattern) {
        int tableOff = 100;
        int[] tok = new int[ROWS];
        for (int r = 0; r < rows; r++) {
            tok[r] = pattern.equals("same") ? vocab / 2 : 1 + rng.nextInt(vocab - 2);
        }
        if (pattern.equals("mixed")) {
            tok[rows / 2] = vocab - 1;
        }
        for (int r = rows; r < ROWS; r++) {
            tok[r] = r % 2 == 0 ? tok[0] : 0;
        }
        float[] dh = gaussian(ROWS * width, 1), g = gaussian(PARAMS, 0.1);
        Arrays.fill(dh, rows * width, ROWS * width, 1e30f);
        float[] java = g.clone();
        ReferenceKernels.embeddingBackward(java, tableOff, dh, tok, rows, width);

        float[] byToken = embeddingBackward(true, tok, dh, g, tableOff, rows, width);
        assertEquals(1, ops.profile().get(EMBED_BY_TOKEN)[1], "the indexed op ran");
        assertEquals(null, ops.profile().get(EMBED_TRANSLATED), "and not the translated one");
        float[] translated = embeddingBackward(false, tok, dh, g, tableOff, rows, width);
        assertEquals(1, ops.profile().get(EMBED_TRANSLATED)[1], "the translated op ran");

        String shape = " " + rows + "x" + width + ", vocabulary " + vocab + ", " + pattern;
        assertArrayEquals(java, byToken, "the serial Java op's gradient bit for bit, and nothing else written" + shape);
        assertArrayEquals(translated, byToken, "the translated op's bit for bit" + shape);
        assertTrue(!Arrays.equals(g, byToken), "the rows added something" + shape);
    }

    /** Without an index (the ids never uploaded) or over more rows than the buffer holds, an error, not a fall-back. */
    @Test
    void embeddingBackwardWithoutTheIndexIsAnError() {
        try (OpenClOps fresh = new OpenClOps(ops.device(), 100, 100, 1, 4)) {
            fresh.useReduction(true);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> fresh.embedBackward(0, 0, 0, 4, 5));
            assertTrue(e.getMessage().contains("upload TOKENS first"), e.getMessage());
            fresh.upload(Buffer.TOKENS);
            IllegalArgumentException more = assertThrows(
                    IllegalArgumentException.class, () -> fresh.embedBackward(0, 0, 0, 5, 5));
            assertTrue(more.getMessage().contains("the token buffer holds 4"), more.getMessage());
        }
    }

    // the gradients after the embedding backward of rows [0, rows) with the token ids tok, on the index or translated
    private float[] embeddingBackward(boolean reduction, int[] tok, float[] dh, float[] g, int tableOff, int rows,
                                      int width) {
        ops.useReduction(reduction);
        try {
            System.arraycopy(tok, 0, ops.hostInts(Buffer.TOKENS), 0, ROWS);
            ops.upload(Buffer.TOKENS);
            System.arraycopy(g, 0, ops.host(Buffer.GRADS), 0, PARAMS);
            ops.upload(Buffer.GRADS);
            ops.download(Buffer.ACT);
            ops.writeHostAct(DH, dh);
            ops.upload(Buffer.ACT);
            ops.startProfile();
            ops.embedBackward(0, tableOff, DH, rows, width);
            assertTrue(ops.isRunningOpenCl(), "the kernel must run as OpenCL");
            ops.download(Buffer.GRADS);
            return Arrays.copyOf(ops.read(Buffer.GRADS), PARAMS);
        } finally {
            ops.useReduction(!ops.cpuDevice());
        }
    }

    // lse, ce and the logits' gradient of rows [first, first + rows), on the work-group kernels or the translated ones
    private float[][] crossEntropy(boolean reduction, float[] logits, float[] dce, int[] targets, int first, int rows,
                                   int vocab) {
        ops.useReduction(reduction);
        ops.useHandCrossEntropy(false);
        try {
            System.arraycopy(targets, 0, ops.hostInts(Buffer.TARGETS), 0, ROWS);
            ops.upload(Buffer.TARGETS);
            ops.download(Buffer.ACT);
            ops.writeHostAct(LOGITS, logits);
            ops.writeHostAct(DCE + first, dce);
            ops.upload(Buffer.ACT);
            ops.startProfile();
            ops.crossEntropyForward(LOGITS, LSE, CE, first, rows, vocab);
            ops.download(Buffer.ACT);
            float[] lse = ops.readHostAct(LSE + first, rows), ce = ops.readHostAct(CE + first, rows);
            ops.crossEntropyBackward(LOGITS, LSE, DCE, first, rows, vocab);
            assertTrue(ops.isRunningOpenCl(), "the kernel must run as OpenCL");
            ops.download(Buffer.ACT);
            return new float[][]{lse, ce, ops.readHostAct(LOGITS, rows * vocab)};
        } finally {
            ops.useReduction(!ops.cpuDevice());
            ops.useHandCrossEntropy(ops.cpuDevice());
        }
    }

    // the gradients and dx after the RMSNorm backward, with or without the reductions
    private float[][] rmsnormBackward(boolean reduction, float[] x, float[] dy, float[] dx, float[] rstd, float[] w,
                                      float[] g, int wOff, int dwOff, int rows, int width) {
        ops.useReduction(reduction);
        try {
            System.arraycopy(w, 0, ops.host(Buffer.PARAMS), 0, PARAMS);
            ops.upload(Buffer.PARAMS);
            System.arraycopy(g, 0, ops.host(Buffer.GRADS), 0, PARAMS);
            ops.upload(Buffer.GRADS);
            ops.download(Buffer.ACT);
            ops.writeHostAct(X, x);
            ops.writeHostAct(DY, dy);
            ops.writeHostAct(DX, dx);
            ops.writeHostAct(RSTD, rstd);
            ops.upload(Buffer.ACT);
            ops.startProfile();
            ops.rmsnormBackward(DX, dwOff, DY, X, RSTD, wOff, rows, width);
            assertTrue(ops.isRunningOpenCl(), "the kernel must run as OpenCL");
            ops.download(Buffer.GRADS);
            ops.download(Buffer.ACT);
            return new float[][]{ops.read(Buffer.GRADS).clone(), ops.readHostAct(DX, rows * width)};
        } finally {
            ops.useReduction(!ops.cpuDevice());
        }
    }

    private float[] gaussian(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (scale * rng.nextGaussian());
        }
        return a;
    }
}
