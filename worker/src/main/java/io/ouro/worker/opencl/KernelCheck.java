package io.ouro.worker.opencl;

import com.aparapi.Kernel;
import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;

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
}
