package io.ouro.worker;

/**
 * The OpenCL device the OpenCL tests run on: system property {@code ouro.test.device}, default
 * {@code opencl:0} (pocl's CPU device in CI; {@code gpu} in deploy/gpu-check.sh).
 */
public final class TestDevice {

    private TestDevice() {
    }

    public static String spec() {
        return System.getProperty("ouro.test.device", "opencl:0");
    }
}
