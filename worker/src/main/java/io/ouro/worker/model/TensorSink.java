package io.ouro.worker.model;

/** Write access to a model-shaped state, one range of one tensor at a time (see {@link TensorSource}). */
@FunctionalInterface
public interface TensorSink {

    /** Stores {@code src[off..off + len)} as elements {@code [start, start + len)} of tensor {@code t}. */
    void write(TensorView t, long start, float[] src, int off, int len);
}
