package io.ouro.worker.model;

import java.util.ArrayList;
import java.util.List;

/**
 * The parameter buffer cut into segments of at most {@code limit} floats at tensor boundaries, for backends whose
 * buffers are Java arrays (at most 2^31 - 9 elements): Ouro-2.6B's 2.67B parameters take two. Gradients and the
 * optimizer's moments are cut the same way.
 */
public final class ParamSegments {

    private final long[] starts, sizes;

    public ParamSegments(ParamLayout layout, long limit) {
        List<Long> st = new ArrayList<>(), sz = new ArrayList<>();
        List<TensorView> ts = layout.tensors();
        for (int i = 0; i < ts.size(); i++) {
            TensorView t = ts.get(i);
            if (t.size() > limit) {
                throw new IllegalArgumentException("tensor " + t.name() + " holds " + t.size()
                        + " parameters, more than one buffer (" + limit + " floats)");
            }
            int last = sz.size() - 1;
            if (last < 0 || sz.get(last) + t.size() > limit) {
                st.add(t.offset());
                sz.add(0L);
                last++;
            }
            sz.set(last, sz.get(last) + t.size());
        }
        starts = st.stream().mapToLong(Long::longValue).toArray();
        sizes = sz.stream().mapToLong(Long::longValue).toArray();
    }

    public int count() {
        return sizes.length;
    }

    /** Floats of segment {@code s}. */
    public long size(int s) {
        return sizes[s];
    }

    /** Offset of segment {@code s}'s first element in the flat layout. */
    public long start(int s) {
        return starts[s];
    }

    /** The segment that holds tensor {@code t} (of any layout of this model's shape). */
    public int segment(TensorView t) {
        int s = starts.length - 1;
        while (s > 0 && starts[s] > t.offset()) {
            s--;
        }
        return s;
    }

    /** Tensor {@code t}'s offset inside its segment. */
    public int local(TensorView t) {
        return Math.toIntExact(t.offset() - starts[segment(t)]);
    }
}
