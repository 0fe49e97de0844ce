package io.ouro.worker.opencl;

import java.util.Locale;

/**
 * The fp32 peak of known devices (non-tensor-core FP32, vendor data sheets, GFLOP/s), for the step line's MFU when
 * the config does not give {@code train.peak_gflops}. Matched by a substring of the OpenCL device name.
 */
public final class DevicePeaks {

    private static final String[][] TABLE = {
            {"H200", "66900"}, {"H100 PCIe", "51200"}, {"H100", "66900"}, {"A100", "19500"}, {"L40S", "91600"},
            {"L40", "90500"}, {"A10", "31200"}, {"V100", "15700"}, {"RTX 4090", "82600"}, {"RTX 3090", "35600"},
            {"T4", "8100"}, {"MI300X", "163400"}, {"MI250X", "47900"},
    };

    private DevicePeaks() {
    }

    /** The fp32 peak in GFLOP/s of the device whose description contains a known name, or 0 when unknown. */
    public static double fp32Gflops(String device) {
        if (device == null) {
            return 0;
        }
        String d = device.toUpperCase(Locale.ROOT);
        for (String[] row : TABLE) {
            if (d.contains(row[0].toUpperCase(Locale.ROOT))) {
                return Double.parseDouble(row[1]);
            }
        }
        return 0;
    }
}
