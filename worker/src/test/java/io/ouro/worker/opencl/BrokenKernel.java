package io.ouro.worker.opencl;

import com.aparapi.Kernel;

/** A kernel Aparapi cannot translate to OpenCL (it allocates an object), for the start-up check test. */
public final class BrokenKernel extends Kernel {
    float[] out = new float[4];

    @Override
    public void run() {
        int i = getGlobalId();
        StringBuilder notOpenCl = new StringBuilder();
        out[i] = notOpenCl.length();
    }
}
