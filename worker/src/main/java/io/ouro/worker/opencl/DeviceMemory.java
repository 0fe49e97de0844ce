package io.ouro.worker.opencl;

import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;

/**
 * Whether a device's buffers alias their Java arrays. Aparapi creates buffers with {@code CL_MEM_USE_HOST_PTR} while
 * an {@link OpenCLDevice} is in its default shared-memory mode; on pocl's CPU device the buffer then is the array, so a
 * missing transfer, a stale host copy or an undersized buffer goes unnoticed. A discrete GPU needs its own copy of
 * every buffer ({@code CL_MEM_COPY_HOST_PTR}, then explicit reads and writes): the backend asks for that copy mode on
 * every device that is not a CPU, and tests force it on pocl with {@code -Douro.test.discreteMemory=true} so that
 * transfer faults fail here as they would on a GPU.
 */
public final class DeviceMemory {

    /** System property that forces the copy mode on every device (tests). */
    public static final String FORCE_PROPERTY = "ouro.test.discreteMemory";

    private DeviceMemory() {
    }

    /** Sets the device's mode before its first kernel runs: copy mode unless it is a CPU and no test forces it. */
    static void configure(OpenCLDevice device) {
        device.setSharedMemory(!discrete(device));
    }

    /** Whether the device's buffers are separate allocations (copy mode) under this process's settings. */
    public static boolean discrete(OpenCLDevice device) {
        return Boolean.getBoolean(FORCE_PROPERTY) || device.getType() != Device.TYPE.CPU;
    }
}
