package io.ouro.worker.model;

import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Grows a model by duplicating its layers (Ouro-2.6B is the 1.4B's 24 layers made 48 at the start of
 * stage 1b). {@code tile}: new layer i is old layer {@code i mod L} ([1..L, 1..L]); {@code interleave}: new
 * layer i is old layer {@code i / m} ([1,1,2,2,...]). Every other tensor is copied by name. The same map
 * applies to AdamW's moments, so each copy of a layer starts with its source's optimizer state.
 */
public final class Upcycling {

    private static final Pattern LAYER = Pattern.compile("^model\\.layers\\.(\\d+)\\.(.*)$");

    private Upcycling() {
    }

    public static float[] map(ParamLayout from, ParamLayout to, float[] src, String mode) {
        TensorSource mapped = source(from, to, FlatTensors.source(src), mode);
        float[] out = new float[to.arraySize()];
        for (TensorView t : to.tensors()) {
            mapped.read(t, 0, out, t.off(), t.len());
        }
        return out;
    }

    /**
     * The grown model's state read from the smaller one's, tensor by tensor (no array of the whole model: the
     * 2.6B model's 2.67B parameters do not fit one): a read of tensor {@code t} of {@code to} reads its source
     * tensor in {@code from}.
     */
    public static TensorSource source(ParamLayout from, ParamLayout to, TensorSource src, String mode) {
        int l0 = from.config().layers(), l1 = to.config().layers();
        if (l1 % l0 != 0) {
            throw new IllegalArgumentException("upcycling " + l0 + " to " + l1 + " layers: not a multiple");
        }
        if (!mode.equals("tile") && !mode.equals("interleave")) {
            throw new IllegalArgumentException("upcycling mode: expected tile or interleave, got '" + mode + "'");
        }
        int m = l1 / l0;
        Map<String, TensorView> sources = new HashMap<>();
        for (TensorView t : to.tensors()) {
            String name = t.name();
            Matcher x = LAYER.matcher(name);
            if (x.matches()) {
                int i = Integer.parseInt(x.group(1));
                int j = mode.equals("tile") ? i % l0 : i / m;
                name = "model.layers." + j + "." + x.group(2);
            }
            TensorView s = from.get(name);
            if (s.size() != t.size()) {
                throw new IllegalArgumentException("upcycling: " + name + " has " + s.size() + " values, "
                        + t.name() + " " + t.size());
            }
            sources.put(t.name(), s);
        }
        return (t, start, dst, off, len) -> src.read(sources.get(t.name()), start, dst, off, len);
    }
}
