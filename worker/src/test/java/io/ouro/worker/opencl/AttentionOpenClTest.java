package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.TestDevice;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import io.ouro.worker.reference.ReferenceKernels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static io.ouro.worker.opencl.KernelAsserts.slice;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hand-written attention (OpenCL C: the forward tiled over keys, 4 queries per work item and tiles of 16 keys;
 * the backward 4 queries / 4 keys per work item) against the translated twins and the Java reference, at sequence
 * lengths that are not multiples of either tile; the gradients accumulate into random values, as in the step.
 */
class AttentionOpenClTest {

    static OpenClOps ops;
    final SplittableRandom rng = new SplittableRandom(29);

    @BeforeAll
    static void open() {
        ops = new OpenClOps(OpenClDevices.select(DeviceSpec.parse(TestDevice.spec())), 1, 400_000);
    }

    @AfterAll
    static void close() {
        ops.close();
    }

    @Test
    void handWrittenForwardMatchesTwinAndReference() {
        compare(2, 37, 3, 10);
        compare(1, 70, 2, 64);
        compare(3, 1, 1, 7);
        compare(1, 33, 1, 128);
    }

    void compare(int batch, int seqLen, int heads, int hd) {
        int size = batch * seqLen * heads * hd;
        int q = 0, k = size, v = 2 * size, out = 3 * size, lse = 4 * size, dout = 5 * size, dq = 6 * size,
                dk = 7 * size, dv = 8 * size;
        float[] a = ops.host(Buffer.ACT);
        for (int i = 0; i < ops.size(Buffer.ACT); i++) {
            a[i] = (float) rng.nextGaussian();
        }
        ops.upload(Buffer.ACT);
        float[] act = a.clone();
        String shape = batch + "x" + seqLen + "x" + heads + "x" + hd;
        float[][] results = new float[2][];
        for (int hand = 0; hand < 2; hand++) {
            System.arraycopy(act, 0, ops.host(Buffer.ACT), 0, act.length);
            ops.upload(Buffer.ACT);
            ops.useFlashAttention(false); // the GPU default, ahead of both twins compared here
            ops.useHandAttention(hand == 1);
            ops.attentionForward(out, lse, q, k, v, batch, seqLen, heads, hd);
            ops.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, batch, seqLen, heads, hd);
            assertTrue(ops.isRunningOpenCl());
            ops.download(Buffer.ACT);
            results[hand] = ops.read(Buffer.ACT).clone();
        }
        ops.useHandAttention(ops.cpuDevice());
        ops.useFlashAttention(!ops.cpuDevice());
        float[] o = new float[size], probs = new float[batch * heads * seqLen * seqLen];
        float[] gq = slice(act, dq, size), gk = slice(act, dk, size), gv = slice(act, dv, size);
        ReferenceKernels.attentionForward(o, probs, slice(act, q, size), slice(act, k, size), slice(act, v, size), batch, seqLen,
                heads, hd);
        ReferenceKernels.attentionBackward(gq, gk, gv, slice(act, dout, size), probs, slice(act, q, size), slice(act, k, size),
                slice(act, v, size), batch, seqLen, heads, hd);
        float[] hand = results[1], twin = results[0];
        assertClose("forward, OpenCL C " + shape, o, 0, hand, out, size);
        assertClose("forward, translated " + shape, o, 0, twin, out, size);
        assertClose("lse, OpenCL C vs translated " + shape, twin, lse, hand, lse, batch * heads * seqLen);
        assertClose("dq, OpenCL C " + shape, gq, 0, hand, dq, size);
        assertClose("dk, OpenCL C " + shape, gk, 0, hand, dk, size);
        assertClose("dv, OpenCL C " + shape, gv, 0, hand, dv, size);
        assertClose("dq, translated " + shape, gq, 0, twin, dq, size);
        assertClose("dk, translated " + shape, gk, 0, twin, dk, size);
        assertClose("dv, translated " + shape, gv, 0, twin, dv, size);
        assertClose("dq dk dv, OpenCL C vs translated " + shape, twin, dq, hand, dq, 3 * size);
        assertClose("nothing else written " + shape, act, 0, hand, 0, out, 0);
    }

    static void assertClose(String what, float[] expected, int eOff, float[] actual, int aOff, int count) {
        assertClose(what, expected, eOff, actual, aOff, count, 1e-5);
    }

    static void assertClose(String what, float[] expected, int eOff, float[] actual, int aOff, int count, double tol) {
        KernelAsserts.assertClose("attention", what, expected, eOff, actual, aOff, count, tol);
    }
}
