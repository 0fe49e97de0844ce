package io.ouro.worker.opencl;

import com.aparapi.Kernel;
import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.TestDevice;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A launch that fails at run time, after the kernel compiled and ran, is an error naming the kernel and the device,
 * not a silent run on Aparapi's Java thread pool. The failure is a buffer one element larger than the device can
 * allocate, given to a kernel that already ran. The kernel is a class of its own: Aparapi marks the device failed for
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
        long floats = device.getMaxMemAllocSize() / 4 + 1024;
        // on a device that can allocate more than this JVM can hold, the failure cannot be provoked this way
        assumeTrue(floats < Integer.MAX_VALUE - 8 && floats * 4 < Runtime.getRuntime().maxMemory() / 2,
                "max allocation " + device.getMaxMemAllocSize() + " bytes");
        GrowingKernel k = new GrowingKernel();
        KernelCheck.requireOpenCl(k, device);
        KernelCheck.launch(k, device, Range.create(device, 64, 64), "first launch");
        k.a = new float[(int) floats];
        OpenClException e = assertThrows(OpenClException.class,
                () -> KernelCheck.launch(k, device, Range.create(device, 64, 64), "launch with a buffer past the limit"));
        k.dispose();
        System.out.println(e.getMessage());
        assertTrue(e.getMessage().contains("GrowingKernel") && e.getMessage().contains(device.getName())
                && e.getMessage().contains("failed at run time"), e.getMessage());
    }
}
