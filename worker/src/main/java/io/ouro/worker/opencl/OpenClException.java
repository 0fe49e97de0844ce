package io.ouro.worker.opencl;

/** The OpenCL backend cannot run as configured: no such device, or a kernel did not compile for it. */
public class OpenClException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public OpenClException(String message) {
        super(message);
    }
}
