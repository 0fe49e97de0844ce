package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import com.aparapi.device.OpenCLDevice;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Device choice and the start-up compile check: errors name the kernel and the device, never fall back. */
class DeviceStartupOpenClTest {

    @Test
    void anOpenClDeviceIsPresentAndDescribed() {
        assertFalse(OpenClDevices.list().isEmpty(), "no OpenCL device: CI installs pocl-opencl-icd");
        OpenCLDevice d = OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec()));
        String text = OpenClDevices.describe(d);
        System.out.println("OpenCL device: " + text);
        assertTrue(text.contains("OpenCL"), text);
    }

    @Test
    void deviceSpecsParseAndBadOnesNameTheField() {
        assertEquals(DeviceSpec.Kind.GPU, DeviceSpec.parse("gpu").kind());
        assertEquals(DeviceSpec.Kind.CPU, DeviceSpec.parse(" CPU ").kind());
        assertEquals(DeviceSpec.Kind.JAVA, DeviceSpec.parse("java").kind());
        assertEquals(3, DeviceSpec.parse("opencl:3").index());
        assertEquals(1, DeviceSpec.parse("gpu:1").index());
        assertEquals("gpu:1", DeviceSpec.parse("gpu:1").toString());
        assertEquals("gpu", DeviceSpec.parse("gpu").toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceSpec.parse("opencl:x"));
        assertTrue(e.getMessage().startsWith("device: expected gpu | gpu:<n> | cpu | opencl:<index> | java"), e.getMessage());
    }

    @Test
    void anAbsentDeviceIsAClearError() {
        OpenClException e = assertThrows(OpenClException.class, () -> OpenClDevices.select(DeviceSpec.parse("opencl:99")));
        assertTrue(e.getMessage().contains("device opencl:99") && e.getMessage().contains("available: opencl:0 "),
                e.getMessage());
    }

    @Test
    void aKernelThatCannotCompileStopsStartUpNamingKernelAndDevice() {
        OpenCLDevice d = OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec()));
        BrokenKernel broken = new BrokenKernel();
        OpenClException e = assertThrows(OpenClException.class, () -> KernelCheck.requireOpenCl(broken, d));
        assertTrue(e.getMessage().contains("BrokenKernel") && e.getMessage().contains(d.getName()), e.getMessage());
        broken.dispose();
    }

    @Test
    void theLoopKernelCompilesAndRunsAsOpenCl() {
        try (OpenClOps ops = new OpenClOps(OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec())), 16, 16)) {
            ops.fill(OpenClOps.Buffer.ACT, 2, 5, 3f);
            assertTrue(ops.isRunningOpenCl());
            ops.download(OpenClOps.Buffer.ACT);
            assertEquals(3f, ops.read(OpenClOps.Buffer.ACT)[6]);
            assertEquals(0f, ops.read(OpenClOps.Buffer.ACT)[7]);
        }
    }

    @Test
    void staleBuffersAreCaughtOnAnyDevice() {
        try (OpenClOps ops = new OpenClOps(OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec())), 16, 16)) {
            ops.fill(OpenClOps.Buffer.ACT, 0, 16, 1f);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> ops.read(OpenClOps.Buffer.ACT));
            assertTrue(e.getMessage().contains("not downloaded"), e.getMessage());
            ops.download(OpenClOps.Buffer.ACT);
            ops.host(OpenClOps.Buffer.ACT)[0] = 5f;
            ops.hostWrote(OpenClOps.Buffer.ACT);
            e = assertThrows(IllegalStateException.class, () -> ops.add(0, 1, 1));
            assertTrue(e.getMessage().contains("not uploaded"), e.getMessage());
        }
    }
}
