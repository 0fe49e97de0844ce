package io.ouro.worker.model;

import java.util.Arrays;

/**
 * A named view into the flat parameter buffer: {@code [offset, offset + size)} holds the tensor in
 * row-major order. Names are the HF Ouro tensor names.
 */
public record TensorView(String name, TensorKind kind, int[] shape, long offset, long size) {

    public TensorView {
        shape = shape.clone();
        long n = 1;
        for (int s : shape) {
            n *= s;
        }
        if (n != size) {
            throw new IllegalArgumentException("TensorView " + name + ": size " + size + " != product of shape "
                    + Arrays.toString(shape));
        }
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    /** Offset as an array index; the reference backend holds the buffer in one Java array. */
    public int off() {
        return Math.toIntExact(offset);
    }

    public int len() {
        return Math.toIntExact(size);
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape) + "@" + offset;
    }
}
