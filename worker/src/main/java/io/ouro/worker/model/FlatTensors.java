package io.ouro.worker.model;

/** {@link TensorSource} and {@link TensorSink} over one flat buffer laid out by the tensors' offsets. */
public final class FlatTensors {

    private FlatTensors() {
    }

    public static TensorSource source(float[] flat) {
        return (t, start, dst, off, len) -> System.arraycopy(flat, Math.toIntExact(t.offset() + start), dst, off, len);
    }

    public static TensorSink sink(float[] flat) {
        return (t, start, src, off, len) -> System.arraycopy(src, off, flat, Math.toIntExact(t.offset() + start), len);
    }
}
