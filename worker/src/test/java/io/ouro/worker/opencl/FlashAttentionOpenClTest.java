package io.ouro.worker.opencl;

import io.ouro.worker.GradientComparison;
import io.ouro.worker.TestData;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.reference.ReferenceKernels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

import static io.ouro.worker.opencl.KernelAsserts.slice;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The flash attention (flash.cl: a work-group of 64 items per block of 64 queries or keys, tiles of
 * min(64, 4096 / hd) rows in local memory), forced on pocl, against the Java reference and the translated twin, at
 * sequence lengths and head sizes that are not multiples of the blocks or tiles (S 1, 37, 100, 129, 1000 against
 * blocks of 64; hd 16, 32, 64, 100, 128: tiles of 64, 64, 64, 40, 32 rows); the gradients accumulate into random values, as in the step.
 * Tolerance 1e-5 (|e - a| / max(1, |e|)), the same as the CPU kernels': fp32 sums in another order.
 */
class FlashAttentionOpenClTest {

    private static final double TOL = 1e-5;
    private static final String[] FLASH_OPS = {DeviceOp.CL_FLASH_FWD.profileName(),
            DeviceOp.CL_FLASH_BWD_Q.profileName(), DeviceOp.CL_FLASH_BWD_KV.profileName()};

    static OpenClOps ops;
    final SplittableRandom rng = new SplittableRandom(41);

    @BeforeAll
    static void open() {
        ops = new OpenClOps(OpenClDevices.select(DeviceSpec.parse(TestDevice.spec())), 1, 800_000);
    }

    @AfterAll
    static void close() {
        ops.close();
    }

    @Test
    void flashForwardAndBackwardMatchReferenceAndTranslatedTwin() {
        compare(2, 37, 3, 16);
        compare(2, 100, 2, 64);
        compare(2, 1, 3, 128);
        compare(2, 100, 2, 128);
        compare(2, 70, 3, 100);
        compare(1, 129, 2, 32); // three query blocks, the last of one row; tiles of 64 at hd 32
        compare(1, 1000, 1, 64); // 16 query blocks, causal blocks skipped for most of them
    }

    void compare(int batch, int seqLen, int heads, int hd) {
        int size = batch * seqLen * heads * hd, lseCount = batch * heads * seqLen;
        int q = 0, k = size, v = 2 * size, out = 3 * size, lse = 4 * size, dout = 5 * size, dq = 6 * size,
                dk = 7 * size, dv = 8 * size, end = 9 * size;
        float[] a = ops.host(Buffer.ACT);
        for (int i = 0; i < ops.size(Buffer.ACT); i++) {
            a[i] = (float) rng.nextGaussian();
        }
        float[] act = a.clone();
        String shape = batch + "x" + seqLen + "x" + heads + "x" + hd;
        float[][] results = new float[2][];
        for (int flash = 0; flash < 2; flash++) {
            System.arraycopy(act, 0, ops.host(Buffer.ACT), 0, act.length);
            ops.upload(Buffer.ACT);
            ops.useHandAttention(false);
            ops.useFlashAttention(flash == 1);
            ops.startProfile();
            ops.attentionForward(out, lse, q, k, v, batch, seqLen, heads, hd);
            ops.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, batch, seqLen, heads, hd);
            assertTrue(ops.isRunningOpenCl());
            Map<String, long[]> ran = ops.profile();
            for (String name : FLASH_OPS) {
                assertEquals(flash == 1, ran.containsKey(name), name + " ran: " + ran.keySet());
            }
            assertEquals(flash == 0, ran.containsKey(DeviceOp.ATTN_FWD.profileName()), "translated ran: " + ran.keySet());
            ops.download(Buffer.ACT);
            results[flash] = ops.read(Buffer.ACT).clone();
        }
        ops.useFlashAttention(!ops.cpuDevice());
        ops.useHandAttention(ops.cpuDevice());
        float[] o = new float[size], probs = new float[batch * heads * seqLen * seqLen];
        float[] gq = slice(act, dq, size), gk = slice(act, dk, size), gv = slice(act, dv, size);
        ReferenceKernels.attentionForward(o, probs, slice(act, q, size), slice(act, k, size), slice(act, v, size),
                batch, seqLen, heads, hd);
        ReferenceKernels.attentionBackward(gq, gk, gv, slice(act, dout, size), probs, slice(act, q, size),
                slice(act, k, size), slice(act, v, size), batch, seqLen, heads, hd);
        float[] flash = results[1], twin = results[0];
        assertClose("forward, flash " + shape, o, 0, flash, out, size);
        assertClose("lse, flash vs translated " + shape, twin, lse, flash, lse, lseCount);
        assertClose("forward, flash vs translated " + shape, twin, out, flash, out, size);
        assertClose("dq, flash " + shape, gq, 0, flash, dq, size);
        assertClose("dk, flash " + shape, gk, 0, flash, dk, size);
        assertClose("dv, flash " + shape, gv, 0, flash, dv, size);
        assertClose("dq dk dv, flash vs translated " + shape, twin, dq, flash, dq, 3 * size);
        KernelAsserts.assertClose("flash", "q k v untouched " + shape, act, 0, flash, 0, out, 0);
        KernelAsserts.assertClose("flash", "past lse, dout untouched " + shape, act, lse + lseCount, flash,
                lse + lseCount, dq - lse - lseCount, 0);
        KernelAsserts.assertClose("flash", "past dv untouched " + shape, act, end, flash, end,
                (int) ops.size(Buffer.ACT) - end, 0);
    }

    /**
     * A whole training step (forward, backward) of the test model, with sequences over one block (S 70: two
     * query blocks of 64, hd 8: tiles of 64 keys), flash forced against the device's default (the CPU kernels on
     * pocl): loss within 1e-5 relative, every gradient within 1e-4 (GradientComparison's relative measure).
     */
    @Test
    void trainingStepWithFlashMatchesDefaultAttention() {
        LoopConfig cfg = new LoopConfig(61, 24, 2, 3, 40, 3, 10_000, 1e-6, 0.1, 0.1, 21);
        int batch = 2, seqLen = 70, n = batch * seqLen;
        ParamLayout layout = new ParamLayout(cfg);
        float[] params = TestData.params(layout, 8);
        int[] tokens = TestData.tokens(n, cfg.vocab(), 31);
        int[] targets = TestData.targets(n, cfg.vocab(), 32);
        Objective obj = Objective.stageOne(0.1);
        double[] loss = new double[2];
        float[][] grads = new float[2][];
        for (int flash = 0; flash < 2; flash++) {
            try (OpenClModel cl = new OpenClModel(cfg, OpenClDevices.select(DeviceSpec.parse(TestDevice.spec())),
                    batch, seqLen, false)) {
                if (flash == 1) {
                    cl.ops().useFlashAttention(true);
                }
                cl.ops().startProfile();
                cl.setParameters(params);
                StepReport r = cl.forward(tokens, targets, obj);
                cl.zeroGradients();
                cl.backward();
                loss[flash] = r.loss();
                grads[flash] = cl.gradients();
                assertTrue(cl.ops().isRunningOpenCl());
                for (String name : FLASH_OPS) {
                    assertEquals(flash == 1 || !cl.ops().cpuDevice(), cl.ops().profile().containsKey(name),
                            name + " ran: " + cl.ops().profile().keySet());
                }
            }
        }
        double lossErr = Math.abs(loss[1] - loss[0]) / Math.abs(loss[0]);
        GradientComparison gc = GradientComparison.of(layout, grads[1], grads[0]);
        String line = String.format(Locale.ROOT, "flash step vs default: loss %.2e rel (%.6f / %.6f), gradients %.2e "
                + "rel (worst %s)", lossErr, loss[1], loss[0], gc.worst(), gc.tensor());
        System.out.println(line);
        assertTrue(lossErr <= 1e-5, line);
        assertTrue(gc.worst() <= 1e-4, line);
    }

    static void assertClose(String what, float[] expected, int eOff, float[] actual, int aOff, int count) {
        KernelAsserts.assertClose("flash attention", what, expected, eOff, actual, aOff, count, TOL);
    }
}
