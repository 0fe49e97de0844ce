package io.ouro.worker.model;

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
        int l0 = from.config().layers(), l1 = to.config().layers();
        if (l1 % l0 != 0) {
            throw new IllegalArgumentException("upcycling " + l0 + " to " + l1 + " layers: not a multiple");
        }
        if (!mode.equals("tile") && !mode.equals("interleave")) {
            throw new IllegalArgumentException("upcycling mode: expected tile or interleave, got '" + mode + "'");
        }
        int m = l1 / l0;
        float[] out = new float[to.arraySize()];
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
            System.arraycopy(src, s.off(), out, t.off(), (int) t.size());
        }
        return out;
    }
}
