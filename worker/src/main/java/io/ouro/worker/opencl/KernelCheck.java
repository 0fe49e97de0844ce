package io.ouro.worker.opencl;

import com.aparapi.Kernel;
import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.internal.kernel.KernelManager;

/**
 * Compiles a kernel for a device at start-up and refuses to go on if it did not become OpenCL.
 * Aparapi, when code generation or the OpenCL compiler fails, logs a warning and runs the kernel on a
 * Java thread pool instead, thousands of times slower for kernels with barriers: that is never what
 * the config asked for.
 */
public final class KernelCheck {

    private KernelCheck() {
    }

    /**
     * Runs {@code kernel} once over a one-item range on {@code device} (the caller sets its fields so
     * that this launch does nothing) and checks that it ran as OpenCL.
     */
    public static void requireOpenCl(Kernel kernel, OpenCLDevice device) {
        try {
            kernel.execute(Range.create(device, 1, 1));
        } catch (RuntimeException | AssertionError e) {
            // Aparapi signals a device it has given up on (after a failed compile) with an AssertionError
            throw new OpenClException("kernel " + kernel.getClass().getSimpleName() + " failed on device "
                    + OpenClDevices.describe(device) + ": " + e);
        }
        if (!kernel.isRunningCL()) {
            throw new OpenClException("kernel " + kernel.getClass().getSimpleName() + " did not compile for device "
                    + OpenClDevices.describe(device) + " (Aparapi would fall back to a Java thread pool; see its log "
                    + "for the OpenCL compiler's message)");
        }
    }

    /**
     * Launches {@code kernel} over {@code range} and fails unless it ran as OpenCL on {@code device}. A launch can
     * fail at run time after the start-up check passed (a buffer the device cannot allocate, a lost device). Aparapi
     * then marks the device failed for the kernel's class and either runs the launch on its Java thread pool, where
     * explicit device buffers are stale, or, when the range names the device, gives up with an AssertionError:
     * neither is a result to go on with, and both become one error naming the op, the kernel and the device.
     */
    public static void launch(Kernel kernel, OpenCLDevice device, Range range, String what) {
        try {
            kernel.execute(range);
        } catch (RuntimeException | AssertionError e) {
            throw failed(kernel, device, what, e.getMessage());
        }
        if (!kernel.isRunningCL() || KernelManager.instance().getPreferences(kernel).getFailedDevices().contains(device)) {
            throw failed(kernel, device, what, "Aparapi fell back to its Java thread pool; its log has the OpenCL error");
        }
    }

    private static OpenClException failed(Kernel kernel, OpenCLDevice device, String what, String why) {
        return new OpenClException(what + " of kernel " + kernel.getClass().getSimpleName() + " failed at run time on "
                + OpenClDevices.describe(device) + " (" + why + "); the run stops rather than go on with stale device "
                + "buffers");
    }
}
