package io.ouro.worker.model;

/**
 * Read access to a model-shaped state (weights or an AdamW moment) one range of one tensor at a time, so
 * that checkpoints stream whatever holds the state: one flat array today, several arrays or a device later.
 */
@FunctionalInterface
public interface TensorSource {

    /** Copies elements {@code [start, start + len)} of tensor {@code t} (row-major) into {@code dst[off..]}. */
    void read(TensorView t, long start, float[] dst, int off, int len);
}
