package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.TestDevice;
import io.ouro.worker.opencl.OpenClOps.Buffer;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An undersized buffer fails a test. Host arrays are padded to half a G1 region ({@link HostArrays}), so a kernel
 * writing a few elements past a buffer's logical end would land in padding and change nothing a test compares; in
 * canary mode (-Douro.test.canary=true, which the build sets for every worker test) each array carries canary values
 * past its end, checked after every launch (shared memory) or download (copy mode), so such a write is an error that
 * names the buffer.
 */
class BufferBoundsOpenClTest {

    @Test
    void aWritePastABuffersEndIsCaught() {
        assertTrue(HostArrays.CANARY, "run with -Douro.test.canary=true (the worker's build does)");
        OpenCLDevice device = OpenClDevices.select(DeviceSpec.parse(TestDevice.spec()));
        try (OpenClOps ops = new OpenClOps(device, 64, 1000)) {
            ops.fill(Buffer.ACT, 992, 8, 1f);
            ops.download(Buffer.ACT);
        }
        try (OpenClOps ops = new OpenClOps(device, 64, 1000)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> {
                ops.fill(Buffer.ACT, 996, 8, 1f);
                ops.download(Buffer.ACT);
            });
            assertTrue(e.getMessage().contains("past the end of buffer act0 (1000 elements)"), e.getMessage());
        }
        try (OpenClOps ops = new OpenClOps(device, 64, 1000)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> {
                ops.fill(OpenClOps.params(0), 60, 5, 1f);
                ops.download(OpenClOps.params(0));
            });
            assertTrue(e.getMessage().contains("past the end of buffer w0 (64 elements)"), e.getMessage());
        }
    }

    @Test
    void aBufferPastG1sPaddingHasItsCanaryToo() {
        // arrays of at least half a G1 region get no padding of their own: canary mode still gives them room
        assertTrue(HostArrays.CANARY, "run with -Douro.test.canary=true (the worker's build does)");
        int n = HostArrays.MIN_ELEMENTS + 1000;
        OpenCLDevice device = OpenClDevices.select(DeviceSpec.parse(TestDevice.spec()));
        try (OpenClOps ops = new OpenClOps(device, 64, n)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> {
                ops.fill(Buffer.ACT, n - 4, 8, 1f);
                ops.download(Buffer.ACT);
            });
            assertTrue(e.getMessage().contains("past the end of buffer act0 (" + n + " elements)"), e.getMessage());
        }
    }
}
