package io.ouro.worker.model;

/**
 * What the forward pass keeps for the backward pass (issue 11, Megatron's "full" recomputation at two
 * granularities). The gradients are the same in every mode: a recomputed activation is bit-identical to the
 * one the forward pass computed.
 *
 * <ul>
 *   <li>{@code NONE}: every activation of every (loop step, layer); the fastest and the largest.</li>
 *   <li>{@code LAYER}: the input of each (loop step, layer); the backward pass recomputes one layer's
 *       activations before its backward: one extra forward of the looped block.</li>
 *   <li>{@code LOOP_STEP}: the input of each loop step; the backward pass recomputes the step's layer inputs
 *       (layers 1..L-1), then each layer as in {@code LAYER}: 2 - 1/L extra forwards of the looped block.</li>
 * </ul>
 * The per-step outputs of the final norm (the LM head's and the gate's input) are kept in every mode.
 */
public enum Recompute {
    NONE, LAYER, LOOP_STEP;

    /** The YAML spelling: none, layer, loop_step. */
    public String yamlName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static Recompute parse(String s) {
        for (Recompute r : values()) {
            if (r.yamlName().equals(s)) {
                return r;
            }
        }
        throw new IllegalArgumentException("recompute: expected none, layer or loop_step, got '" + s + "'");
    }
}
