package io.ouro.worker.opencl;

import com.aparapi.Kernel;
import com.aparapi.Range;
import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.model.MatmulPrecision;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Why the device program stays one program (docs/opencl.md, "One program, and what each launch pays"):
 * <ul>
 *   <li>Two Aparapi kernel classes over the same Java array hold two device copies of it (a buffer per kernel
 *       instance, in that kernel's own OpenCL context): in discrete (copy) memory, what one family writes on the
 *       device, the other does not see until it has gone to the host and back. pocl in its default shared mode
 *       hides this, as it hides every missing transfer.</li>
 *   <li>Within the one program, an op's launch reserves only the local memory it uses: Aparapi sets a
 *       {@code @Local} field's size from its array at every launch, and {@link KernelLaunches} binds one-float tiles
 *       for the ops that use none ({@link DeviceOp#localTiles()}, derived from the source by DeviceOpTest).</li>
 * </ul>
 */
class KernelFamiliesOpenClTest {

    static final int N = 1000;

    /** One "family": writes x. */
    static final class Writer extends Kernel {
        float[] x = new float[N];

        @Override
        public void run() {
            int i = getGlobalId();
            x[i] = i + 1;
        }
    }

    /** Another "family": reads what it takes to be the same x. */
    static final class Reader extends Kernel {
        float[] x;
        float[] y = new float[N];

        @Override
        public void run() {
            int i = getGlobalId();
            y[i] = x[i];
        }
    }

    @Test
    void twoKernelClassesOverOneArrayHoldTwoDeviceCopiesInDiscreteMemory() {
        OpenCLDevice device = OpenClDevices.select(DeviceSpec.parse(TestDevice.spec()));
        boolean shared = device.isSharedMemory();
        Writer w = new Writer();
        Reader r = new Reader();
        r.x = w.x; // the same Java array
        try {
            device.setSharedMemory(false);
            w.setExplicit(true);
            r.setExplicit(true);
            Range range = Range.create(device, N);
            w.put(w.x);
            w.execute(range); // the writer's device copy of x now holds 1..N; the host array still holds zeros
            r.put(r.x).put(r.y);
            r.execute(range);
            r.get(r.y);
            assertTrue(w.isRunningCL() && r.isRunningCL(), "both ran as OpenCL (not Aparapi's Java fall-back)");
            float[] expect = new float[N];
            for (int i = 0; i < N; i++) {
                expect[i] = i + 1;
            }
            assertArrayEquals(new float[N], r.y, "the reader's device x is its own copy of the host array: it does not see"
                    + " the writer's device writes");
            w.get(w.x); // device to host ...
            r.put(r.x); // ... and host to the other device copy
            r.execute(range);
            r.get(r.y);
            assertArrayEquals(expect, r.y, "after a round trip through the host it does");

            if (device.getType() == Device.TYPE.CPU) { // what pocl's shared mode hides (CL_MEM_USE_HOST_PTR aliasing)
                Writer w2 = new Writer();
                Reader r2 = new Reader();
                r2.x = w2.x;
                device.setSharedMemory(true);
                w2.execute(range);
                r2.execute(range);
                assertArrayEquals(expect, r2.y, "on pocl in shared mode both kernels alias the Java array");
            }
        } finally {
            device.setSharedMemory(shared);
            w.dispose();
            r.dispose();
        }
    }

    @Test
    void opsThatUseNoLocalMemoryAreLaunchedWithOneFloatTiles() {
        OpenClOps ops = new OpenClOps(OpenClDevices.select(DeviceSpec.parse(TestDevice.spec())), new int[] {4096}, 8192,
                1, 1, new int[0], true, MatmulPrecision.FP32);
        try {
            LoopKernel k = ops.kernel();
            int full = k.tileA.length;
            ops.useLocalPerLaunch(false); // a CPU device's default: every launch binds the full tiles
            ops.fill(OpenClOps.Buffer.ACT, 4000, 100, 0f);
            assertEquals(full, k.tileA.length, "without binding by op, fill carries the full tiles");
            ops.useLocalPerLaunch(true); // a GPU's default
            assertEquals(64 * 65, full, "the tiles' full size");
            int m = 37, n = 45, kk = 29, bOff = m * kk, cOff = 5000;
            float[] act = ops.host(OpenClOps.Buffer.ACT);
            java.util.Random rnd = new java.util.Random(5);
            for (int i = 0; i < bOff + n * kk; i++) {
                act[i] = rnd.nextFloat() - 0.5f;
            }
            float[] host = act.clone();
            ops.upload(OpenClOps.Buffer.ACT);
            ops.useGemm(OpenClOps.GemmKernel.TILED); // stages its tiles in local memory, on any device
            ops.startProfile();
            ops.fill(OpenClOps.Buffer.ACT, 4000, 100, 0f);
            assertEquals(1, k.tileA.length, "fill was launched with one-float tiles");
            assertEquals(1, k.tileB.length);
            ops.gemm(OpenClOps.Buffer.ACT, cOff, n, 1, OpenClOps.Buffer.ACT, 0, kk, 1, OpenClOps.Buffer.ACT, bOff, kk, 1,
                    m, n, kk, false);
            assertEquals(full, k.tileA.length, "the tiled GEMM was launched with its tiles");
            assertEquals(full, k.tileB.length);
            ops.fill(OpenClOps.Buffer.ACT, 4000, 100, 1f);
            assertEquals(1, k.tileA.length, "and the next light op without them again");
            ops.gemm(OpenClOps.Buffer.ACT, cOff, n, 1, OpenClOps.Buffer.ACT, 0, kk, 1, OpenClOps.Buffer.ACT, bOff, kk, 1,
                    m, n, kk, false);
            assertEquals(2, ops.profile().get(DeviceOp.CL_GEMM_TILED.profileName())[1], "the tiled kernel ran both");
            ops.download(OpenClOps.Buffer.ACT);
            double worst = 0;
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int q = 0; q < kk; q++) {
                        s += (double) host[i * kk + q] * host[bOff + j * kk + q];
                    }
                    worst = Math.max(worst, Math.abs(act[cOff + i * n + j] - s));
                }
            }
            assertTrue(worst < 1e-5, "the tiled GEMM after its tiles shrank and grew again: " + worst);
            assertEquals(1f, act[4000], "the fill ran");
        } finally {
            ops.useGemm(OpenClOps.GemmKernel.AUTO);
            ops.close();
        }
    }
}
