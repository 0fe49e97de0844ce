package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import com.aparapi.Kernel;
import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.TestDevice;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A launch that fails at run time, after the kernel compiled and ran, is an error naming the kernel and the device,
 * not a silent run on Aparapi's Java thread pool. The failure: a work-group twice the device's largest, for a kernel
 * that already ran (a launch the device refuses, on any device and without a large buffer). The kernel is a class of its own: Aparapi marks the device failed for
 * every instance of the class in the JVM, which must not reach the LoopKernel of the other tests.
 */
class RuntimeFailureOpenClTest {

    /** Adds one to each element of {@code a}. */
    public static final class GrowingKernel extends Kernel {
        float[] a = new float[64];

        @Override
        public void run() {
            a[getGlobalId()] = a[getGlobalId()] + 1f;
        }
    }

    @Test
    void aLaunchThatFailsAtRunTimeStopsNamingKernelAndDevice() {
        OpenCLDevice device = OpenClDevices.select(DeviceSpec.parse(TestDevice.spec()));
        GrowingKernel k = new GrowingKernel();
        KernelCheck.requireOpenCl(k, device);
        KernelCheck.launch(k, device, Range.create(device, 64, 64), "first launch");
        int wg = device.getMaxWorkGroupSize() * 2;
        k.a = new float[wg];
        OpenClException e = assertThrows(OpenClException.class,
                () -> KernelCheck.launch(k, device, Range.create(device, wg, wg), "launch with a work-group too large"));
        k.dispose();
        System.out.println(e.getMessage());
        assertTrue(e.getMessage().contains("GrowingKernel") && e.getMessage().contains(device.getName())
                && e.getMessage().contains("failed at run time"), e.getMessage());
    }
}
