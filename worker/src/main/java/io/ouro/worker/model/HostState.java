package io.ouro.worker.model;

import java.util.HashMap;
import java.util.Map;

/**
 * A model's training state on the host, tensor by tensor: the parameters, Adam's two moments over a range of the flat
 * layout (a ZeRO-1 slice, or all of it) and the update count. A backend move carries the state through here so that
 * the old backend's device buffers are released before the new backend allocates its own: the device never holds two
 * models at once. Each tensor is its own array (a model past 2^31 parameters has no flat host array); the moments keep
 * only the range's part of each tensor.
 */
public final class HostState {

    private final Map<String, float[]> params = new HashMap<>();
    private final Map<String, float[]>[] moments;
    private final long from, to, optimizerStep;
    private long floats;

    /** Reads the whole state out of the sources (a backend's, before it closes). */
    @SuppressWarnings("unchecked")
    public HostState(ParamLayout layout, TensorSource parameters, long optimizerStep, TensorSource m, TensorSource v,
                     long from, long to) {
        this.from = from;
        this.to = to;
        this.optimizerStep = optimizerStep;
        this.moments = new Map[] {new HashMap<String, float[]>(), new HashMap<String, float[]>()};
        TensorSource[] ms = {m, v};
        for (TensorView t : layout.tensors()) {
            float[] p = new float[t.len()];
            parameters.read(t, 0, p, 0, p.length);
            params.put(t.name(), p);
            floats += p.length;
            long lo = Math.max(from, t.offset()), hi = Math.min(to, t.offset() + t.size());
            if (hi > lo) {
                for (int which = 0; which < 2; which++) {
                    float[] part = new float[(int) (hi - lo)];
                    ms[which].read(t, lo - t.offset(), part, 0, part.length);
                    moments[which].put(t.name(), part);
                    floats += part.length;
                }
            }
        }
    }

    /** Bytes the state holds on the host. */
    public long bytes() {
        return 4 * floats;
    }

    public long optimizerStep() {
        return optimizerStep;
    }

    /** The range of the flat layout whose moments this holds. */
    public long[] range() {
        return new long[] {from, to};
    }

    public TensorSource parameters() {
        return (t, start, dst, off, len) -> System.arraycopy(params.get(t.name()), (int) start, dst, off, len);
    }

    /** Moment {@code which} (0, 1): a read must lie within the range this holds. */
    public TensorSource moment(int which) {
        return (t, start, dst, off, len) -> {
            long lo = Math.max(from, t.offset()), at = t.offset() + start;
            if (at < lo || at + len > Math.min(to, t.offset() + t.size())) {
                throw new IllegalArgumentException("moments of " + t.name() + " [" + start + ", +" + len
                        + ") are outside the kept range [" + from + ", " + to + ")");
            }
            System.arraycopy(moments[which].get(t.name()), (int) (at - lo), dst, off, len);
        };
    }
}
