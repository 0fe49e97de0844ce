package io.ouro.worker.opencl;

import java.util.Locale;

/**
 * The fp32 peak of known devices (non-tensor-core FP32, vendor data sheets, GFLOP/s), and their dense bf16
 * tensor-core peak, for the step line's MFU when the config does not give {@code train.peak_gflops}
 * ({@link #mfuPeakGflops}). Matched by a substring of the OpenCL device name.
 */
public final class DevicePeaks {

    private static final String[][] TABLE = {
            {"H200", "66900"}, {"H100 PCIe", "51200"}, {"H100", "66900"}, {"A100", "19500"}, {"L40S", "91600"},
            {"L40", "90500"}, {"A10", "31200"}, {"V100", "15700"}, {"RTX 4090", "82600"}, {"RTX 3090", "35600"},
            {"T4", "8100"}, {"MI300X", "163400"}, {"MI250X", "47900"},
    };

    /** Dense bfloat16 tensor-core peaks with fp32 accumulation (data sheets, GFLOP/s), for the tensor-core GEMM. */
    private static final String[][] BF16_TENSOR = {
            {"H200", "989400"}, {"H100 PCIe", "756000"}, {"H100", "989400"}, {"A100", "312000"}, {"L40S", "362050"},
            {"L40", "181050"}, {"A10", "125000"},
    };

    private DevicePeaks() {
    }

    /**
     * What a backend's description ({@code OpenClBackend.describe}) says when its GEMMs run on bf16 tensor cores
     * ({@code train.matmul: bf16_tensor} on a device that passed {@link TensorCores#probe}).
     */
    public static final String ON_TENSOR_CORES = "GEMM on bf16 tensor cores";

    /**
     * The peak the step line's MFU is measured against when the config gives no {@code train.peak_gflops}: the dense
     * bf16 tensor-core peak when {@code bf16Tensor} (the setting) and the backend's description says its GEMMs run on
     * tensor cores ({@link #ON_TENSOR_CORES}), else the fp32 peak; 0 for an unknown device (no MFU).
     */
    public static double mfuPeakGflops(boolean bf16Tensor, String described) {
        return bf16Tensor && described != null && described.contains(ON_TENSOR_CORES) ? bf16TensorGflops(described)
                : fp32Gflops(described);
    }

    /** The dense bf16 tensor-core peak in GFLOP/s of a known device, or 0 when unknown. */
    public static double bf16TensorGflops(String device) {
        return lookup(BF16_TENSOR, device);
    }

    /** The fp32 peak in GFLOP/s of the device whose description contains a known name, or 0 when unknown. */
    public static double fp32Gflops(String device) {
        return lookup(TABLE, device);
    }

    private static double lookup(String[][] table, String device) {
        if (device == null) {
            return 0;
        }
        String d = device.toUpperCase(Locale.ROOT);
        for (String[] row : table) {
            if (d.contains(row[0].toUpperCase(Locale.ROOT))) {
                return Double.parseDouble(row[1]);
            }
        }
        return 0;
    }
}
