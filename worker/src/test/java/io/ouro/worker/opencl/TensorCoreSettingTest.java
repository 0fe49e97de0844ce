package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import com.aparapi.device.OpenCLDevice;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.model.StepShape;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@code train.matmul} on the OpenCL side: when the tensor-core instruction goes into LoopKernel's program (the setting
 * times the probe), what a process does when a later model asks for the other setting, the probe's own program (built,
 * run and released), and the MFU peak rule. On pocl the probe answers "not an NVIDIA device", so the define is never
 * set here: the decision is tested as a function.
 */
class TensorCoreSettingTest {

    @Test
    void thePtxIsDefinedOnlyForBf16TensorOnADeviceThatPassedTheProbe() {
        assertFalse(ClKernels.definesPtx(MatmulPrecision.FP32, false));
        assertFalse(ClKernels.definesPtx(MatmulPrecision.FP32, true), "fp32 never depends on the instruction compiling");
        assertFalse(ClKernels.definesPtx(MatmulPrecision.BF16_TENSOR, false), "no probe's yes, no instruction");
        assertTrue(ClKernels.definesPtx(MatmulPrecision.BF16_TENSOR, true));
    }

    @Test
    void aProcessKeepsItsFirstProgramAndRefusesWhatItCannotServe() {
        java.util.function.BooleanSupplier never = () -> fail("the device's build of the define is not asked");
        // nothing installed yet: the request decides
        assertFalse(ClKernels.resolve(null, false, never, "dev"));
        assertTrue(ClKernels.resolve(null, true, never, "dev"));
        // the same setting again
        assertFalse(ClKernels.resolve(false, false, never, "dev"));
        assertTrue(ClKernels.resolve(true, true, never, "dev"));
        // fp32 after bf16_tensor: the tensor-core program serves it (its fp32 kernels are the same) where it builds
        assertTrue(ClKernels.resolve(true, false, () -> true, "dev"));
        OpenClException e = assertThrows(OpenClException.class,
                () -> ClKernels.resolve(true, false, () -> false, "old GPU"));
        assertTrue(e.getMessage().startsWith("train.matmul fp32 on old GPU: ") && e.getMessage().contains("process of its own"),
                e.getMessage());
        // bf16_tensor after fp32 on a device that passed the probe: the fp32 program cannot issue the instruction
        e = assertThrows(OpenClException.class, () -> ClKernels.resolve(false, true, never, "H100"));
        assertTrue(e.getMessage().startsWith("train.matmul bf16_tensor on H100: ")
                && e.getMessage().contains("built for fp32") && e.getMessage().contains("process of its own"),
                e.getMessage());
    }

    @Test
    void bf16TensorOnADeviceWithoutTheInstructionRunsTheFp32Program() {
        OpenCLDevice d = OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec()));
        if (TensorCores.nvidia(d)) {
            return; // the CI device (pocl) has no instruction; on an NVIDIA GPU gpu-check covers the setting
        }
        // whichever setting came first in this JVM, neither asks for the define here
        assertFalse(ClKernels.install(MatmulPrecision.FP32, d));
        assertFalse(ClKernels.install(MatmulPrecision.BF16_TENSOR, d), "no tensor cores on " + OpenClDevices.describe(d));
        assertFalse(ClKernels.tensorCorePtx());
        assertFalse(ClKernels.source().contains("#define OURO_TC_PTX"), "the fp32 program");
        assertEquals("not an NVIDIA device", TensorCores.why(d));
    }

    @Test
    void theBackendReceivesTheSettingThroughTheShapeAndSaysWhatRan() {
        io.ouro.worker.model.LoopConfig cfg = new io.ouro.worker.model.LoopConfig(29, 16, 1, 2, 24, 2, 10_000, 1e-6,
                0.1, 0.1, 4);
        StepShape shape = StepShape.whole(2, 9).withMatmul(MatmulPrecision.BF16_TENSOR);
        try (var b = io.ouro.worker.backend.Backends.open(io.ouro.worker.TestDevice.spec(), cfg,
                io.ouro.worker.model.AdamWConfig.ouro(), shape)) {
            OpenClOps ops = ((io.ouro.worker.backend.OpenClBackend) b).model().ops();
            if (TensorCores.nvidia(ops.device())) {
                return;
            }
            assertFalse(ops.usesTensorCores());
            assertEquals(ops.cpuDevice() ? OpenClOps.GemmKernel.OUTER : OpenClOps.GemmKernel.TILED, ops.effectiveGemm(),
                    "no tensor cores: the device's fp32 GEMM");
            assertTrue(b.describe().endsWith(", GEMM in fp32 (train.matmul bf16_tensor: no tensor cores here)"),
                    b.describe());
            assertEquals(DevicePeaks.fp32Gflops(b.describe()), DevicePeaks.mfuPeakGflops(true, b.describe()),
                    "MFU against the fp32 peak");
        }
    }

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

    /**
     * The ldmatrix check (OURO_TC_LDMATRIX): its program builds and runs here (its local tile and barrier included;
     * without NVIDIA's compiler each lane writes -1), its verdict here is no, and the judge of its output takes the
     * ldmatrix.x4 layout (lane l, register i: word l % 4 of row 8 i + l / 4) and rejects two lanes swapped.
     */
    @Test
    void theLdmatrixCheckBuildsRunsAndJudgesTheLayout() {
        OpenCLDevice d = OpenClDevices.select(DeviceSpec.parse(io.ouro.worker.TestDevice.spec()));
        if (!TensorCores.nvidia(d)) {
            float[] out = TensorCores.execute(d, TensorCores.LDMATRIX_SOURCE, "ouro_tc_probe_ldmatrix");
            for (int lane = 0; lane < 32; lane++) {
                assertEquals(-1f, out[lane * 4], "lane " + lane);
            }
            assertFalse(TensorCores.ldmatrix(d), "no ldmatrix without NVIDIA's compiler");
            assertEquals("not an NVIDIA device", TensorCores.runLdmatrix(d));
        }
        float[] right = new float[128];
        for (int lane = 0; lane < 32; lane++) {
            for (int i = 0; i < 4; i++) {
                right[lane * 4 + i] = (8 * i + lane / 4) * 4 + lane % 4;
            }
        }
        assertEquals(null, TensorCores.ldmatrixWrong(right));
        float[] swapped = right.clone();
        swapped[5 * 4 + 2] = right[6 * 4 + 2];
        swapped[6 * 4 + 2] = right[5 * 4 + 2];
        assertTrue(TensorCores.ldmatrixWrong(swapped).contains("lane 5 register 2"), TensorCores.ldmatrixWrong(swapped));
    }

    @Test
    void theShapeCarriesTheSettingAndMfuUsesTheTensorPeakOnlyOnTensorCores() {
        StepShape s = StepShape.whole(2, 8);
        assertEquals(MatmulPrecision.FP32, s.matmul(), "fp32 by default");
        StepShape t = s.withMatmul(MatmulPrecision.BF16_TENSOR).withMicro(1).withBf16Stash(true);
        assertEquals(MatmulPrecision.BF16_TENSOR, t.matmul(), "kept through the other withers");
        assertEquals(MatmulPrecision.BF16_TENSOR, MatmulPrecision.parse("bf16_tensor"));
        assertThrows(IllegalArgumentException.class, () -> MatmulPrecision.parse("tf32"));
        String h100 = "NVIDIA H100 80GB HBM3 (GPU, OpenCL 3.0 CUDA 12.4.131)";
        assertEquals(989400, DevicePeaks.mfuPeakGflops(true, h100 + ", " + DevicePeaks.ON_TENSOR_CORES));
        assertEquals(66900, DevicePeaks.mfuPeakGflops(true, h100 + ", GEMM in fp32"), "asked, but no tensor cores ran");
        assertEquals(66900, DevicePeaks.mfuPeakGflops(false, h100));
        assertEquals(0, DevicePeaks.mfuPeakGflops(true, "cpu-haswell (CPU, OpenCL 3.0 PoCL)"), "unknown: no MFU");
    }
}
