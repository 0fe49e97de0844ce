package io.ouro.worker.opencl;

import com.aparapi.device.OpenCLDevice;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tensor-core probe's own program: built, run and released, each time it is asked to run. */
class TensorCoreSettingTest {

    @Test
    void theProbesProgramBuildsRunsAndIsReleasedEachTime() {
        OpenCLDevice d = OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec()));
        if (TensorCores.nvidia(d)) {
            return; // there the probe computes the product; gpu-check prints its verdict
        }
        // without NVIDIA's compiler the kernel writes -1 in each lane's first slot; twice: the first one's context,
        // queue, program, kernel and buffer were released and new ones made
        for (int round = 0; round < 2; round++) {
            float[] out = TensorCores.execute(d);
            for (int lane = 0; lane < 32; lane++) {
                assertEquals(-1f, out[lane * 4], "lane " + lane);
                assertTrue(Float.isNaN(out[lane * 4 + 1]), "lane " + lane + " wrote only its first slot");
            }
            assertTrue(Float.isNaN(out[TensorCores.OUT]), "nothing past the warp's slots");
        }
    }
}
