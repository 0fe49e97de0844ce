package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.model.MatmulPrecision;
import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.TestDevice;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Device memory past 2 GiB on a device that does not alias host memory. Aparapi 3.0.2 sizes a buffer in a 32-bit int
 * of bytes, so one Java array of 2^29 floats or more wraps: the launch fails, or on a GPU the buffer is undersized and
 * written out of bounds. The backend never asks for such a buffer: an activation arena of 2^29 + 1024 floats lives in
 * three windows (2^28, 2^28 and 1024 floats), each its own device buffer, addressed by global offsets. Here the device
 * runs in copy mode (as a GPU does, {@link DeviceMemory}), ops write the last elements, read across the windows and
 * straddle a window boundary, and what comes back equals the same arithmetic in Java.
 */
class LargeBufferOpenClTest {

    private static final int N = (1 << 29) + 1024, W = OpenClOps.ACT_WINDOW;

    @Test
    void anActivationArenaPastTwoGibWorksInCopyMode() {
        String before = System.getProperty(DeviceMemory.FORCE_PROPERTY);
        System.setProperty(DeviceMemory.FORCE_PROPERTY, "true");
        OpenCLDevice device = OpenClDevices.select(DeviceSpec.parse(TestDevice.spec()));
        try (OpenClOps ops = new OpenClOps(device, new int[]{64}, N, 1, 1, new int[0], false)) {
            assertFalse(device.isSharedMemory(), "the device runs in copy mode: its buffers are separate allocations");
            assertEquals(3, ops.actWindows());
            for (int w = 0; w < 3; w++) {
                assertTrue(ops.actWindow(w).length <= HostArrays.MAX_FLOATS, "window " + w + " below Aparapi's limit");
            }
            // host values: the first window counts up, the others hold their global offset modulo 1000
            for (int w = 0; w < 3; w++) {
                float[] a = ops.actWindow(w);
                int len = w < 2 ? W : 1024;
                for (int i = 0; i < len; i++) {
                    a[i] = initial(w, i);
                }
            }
            ops.upload(Buffer.ACT);
            int last = 2 * W;
            // the last window += the first 1024 values of the first (a read from window 0, a write to window 2)
            ops.add(last, 0, 1024);
            // the last 10 elements = -1
            ops.fill(Buffer.ACT, N - 10, 10, -1f);
            // an elementwise op straddling the boundary between the first two windows
            ops.add(W - 512, last, 1024);
            // in copy mode the host copy is stale until the download (on pocl's shared mode the kernel wrote it)
            float hostBefore = ops.actWindow(2)[1023];
            ops.download(Buffer.ACT);
            assertEquals(initial(2, 1023), hostBefore, "the host copy changed only by the download");
            for (int w = 0; w < 3; w++) {
                float[] got = ops.actWindow(w);
                int len = w < 2 ? W : 1024;
                for (int i = 0; i < len; i++) {
                    float want = expected(w, i);
                    if (Float.compare(got[i], want) != 0) {
                        throw new AssertionError("act[" + ((long) w * W + i) + "] (window " + w + ", element " + i
                                + "): expected " + want + ", got " + got[i]);
                    }
                }
            }
            assertEquals(-1f, ops.readHostAct(N - 1, 1)[0], "the arena's last element");
        } finally {
            if (before == null) {
                System.clearProperty(DeviceMemory.FORCE_PROPERTY);
            } else {
                System.setProperty(DeviceMemory.FORCE_PROPERTY, before);
            }
        }
    }

    private static float initial(int w, int i) {
        return w == 0 ? i % 4096 : (float) (((long) w * W + i) % 1000);
    }

    // the ops above in Java, element by element (no second 2 GiB copy: the test JVM's heap holds the arena once)
    private static float lastWindow(int i) {
        return i >= 1014 ? -1f : initial(2, i) + initial(0, i);
    }

    private static float expected(int w, int i) {
        long g = (long) w * W + i;
        if (w == 2) {
            return lastWindow(i);
        }
        float v = initial(w, i);
        return g >= W - 512 && g < W + 512 ? v + lastWindow((int) (g - (W - 512))) : v;
    }

    /**
     * The tensor-core GEMM's bfloat16 copies of a large segment, in copy mode: a parameter segment of 2^28 + 4,096
     * floats (1 GiB; the test JVM's heap holds the arena of the test above too, so not the largest, 2 GiB), whose copy
     * is read at its last weights (16-bit offsets past 2^28, byte offsets past 2^29; the largest segment's reach
     * 2^29 - 64 values, 2^30 bytes, which no int offset here comes near wrapping), with A from an activation copy. The
     * forward product with both copies must give the bits it gives rounding the fp32 operands as it stages them, and
     * match the bf16-rounded reference; each copy made once.
     */
    @Test
    void theBf16CopiesOfALargeSegment() {
        String before = System.getProperty(DeviceMemory.FORCE_PROPERTY);
        System.setProperty(DeviceMemory.FORCE_PROPERTY, "true");
        OpenCLDevice device = OpenClDevices.select(DeviceSpec.parse(TestDevice.spec()));
        int p = (1 << 28) + 4096, rows = 37, in = 45, out = 29;
        int wOff = p - out * in - 3, xOff = 11, yOff = 50_000;
        org.junit.jupiter.api.Assumptions.assumeTrue(ClKernels.serves(MatmulPrecision.BF16_TENSOR, device),
                "this process's program is fp32 and the device runs the tensor-core instruction (gpu-check reruns it)");
        try (OpenClOps ops = new OpenClOps(device, new int[]{p}, 200_000L, 1, 1, new int[0], false,
                MatmulPrecision.BF16_TENSOR)) {
            ops.setActivationCopy(new int[]{100_000, 125_000, 150_000, 175_000}, 50_000);
            java.util.SplittableRandom rng = new java.util.SplittableRandom(5);
            float[] w = new float[out * in], x = new float[rows * in];
            float[] params = ops.host(Buffer.PARAMS);
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) rng.nextGaussian();
                params[wOff + i] = w[i];
            }
            ops.upload(Buffer.PARAMS);
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) rng.nextGaussian();
            }
            ops.writeHostAct(xOff, x);
            ops.upload(Buffer.ACT);
            ops.useGemm(OpenClOps.GemmKernel.TENSOR);
            ops.startProfile();
            ops.linearForward(yOff, xOff, Buffer.PARAMS, wOff, rows, in, out);
            ops.download(Buffer.ACT);
            float[] copied = ops.readHostAct(yOff, rows * out);
            assertEquals(1L, KernelAsserts.launches(ops, DeviceOp.CL_WEIGHT_BF16), "the weight copy made");
            assertEquals(1L, KernelAsserts.launches(ops, DeviceOp.CL_ACT_BF16), "x's copy made");
            ops.useWeightCopy(false);
            ops.useActivationCopy(false);
            ops.linearForward(yOff, xOff, Buffer.PARAMS, wOff, rows, in, out);
            ops.download(Buffer.ACT);
            float[] staged = ops.readHostAct(yOff, rows * out);
            float[] ref = new float[rows * out], wr = new float[w.length], xr = new float[x.length];
            for (int i = 0; i < w.length; i++) {
                wr[i] = io.ouro.worker.model.Bf16.round(w[i]);
            }
            for (int i = 0; i < x.length; i++) {
                xr[i] = io.ouro.worker.model.Bf16.round(x[i]);
            }
            io.ouro.worker.reference.ReferenceKernels.matmulForward(ref, 0, xr, 0, wr, 0, rows, in, out);
            for (int i = 0; i < ref.length; i++) {
                assertEquals(Float.floatToRawIntBits(staged[i]), Float.floatToRawIntBits(copied[i]),
                        "output " + i + ": copies against rounding on staging");
                assertEquals(ref[i], copied[i], 4e-5 * Math.max(1, Math.abs(ref[i])), "output " + i);
            }
        } finally {
            if (before == null) {
                System.clearProperty(DeviceMemory.FORCE_PROPERTY);
            } else {
                System.setProperty(DeviceMemory.FORCE_PROPERTY, before);
            }
        }
    }

    @Test
    void noBufferOfTwoGibIsEverAskedFor() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> HostArrays.floats(HostArrays.MAX_FLOATS + 1));
        assertTrue(e.getMessage().contains("Aparapi 3.0.2"), e.getMessage());
        assertTrue(4L * HostArrays.MAX_FLOATS < (1L << 31), "the largest buffer's byte size is a positive int");
        assertTrue((long) OpenClOps.ACT_WINDOW <= HostArrays.MAX_FLOATS);
    }
}
