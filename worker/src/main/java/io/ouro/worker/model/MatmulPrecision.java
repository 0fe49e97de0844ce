package io.ouro.worker.model;

/**
 * The precision of the step's matrix products on an OpenCL device ({@code train.matmul}; see docs/tensor-cores.md).
 *
 * <ul>
 *   <li>{@code FP32}: fp32 operands and sums (the default; every device).</li>
 *   <li>{@code BF16_TENSOR}: operands rounded to bfloat16, sums in fp32, on NVIDIA tensor cores (gemm_tc.cl's
 *       {@code mma.sync} bf16) where the device passes {@code TensorCores.probe}; elsewhere the products run in
 *       fp32 as with {@code FP32}. The Java reference backend always runs fp32.</li>
 * </ul>
 */
public enum MatmulPrecision {
    FP32, BF16_TENSOR;

    /** The YAML spelling: fp32, bf16_tensor. */
    public String yamlName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static MatmulPrecision parse(String s) {
        for (MatmulPrecision m : values()) {
            if (m.yamlName().equals(s)) {
                return m;
            }
        }
        throw new IllegalArgumentException("matmul: expected fp32 or bf16_tensor, got '" + s + "'");
    }
}
