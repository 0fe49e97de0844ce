package io.ouro.worker.model;

import java.util.EnumSet;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Which parameter tensors receive decoupled weight decay: those whose kind is in {@code kinds}, minus
 * any whose name matches {@code exclude}. The default decays embeddings and linear weights, not norms
 * and not biases.
 */
public record DecayPolicy(Set<TensorKind> kinds, Pattern exclude) {

    public DecayPolicy {
        kinds = kinds.isEmpty() ? EnumSet.noneOf(TensorKind.class) : EnumSet.copyOf(kinds);
    }

    public static DecayPolicy defaults() {
        return new DecayPolicy(EnumSet.of(TensorKind.EMBEDDING, TensorKind.LINEAR), null);
    }

    public boolean decays(TensorView t) {
        return kinds.contains(t.kind()) && (exclude == null || !exclude.matcher(t.name()).matches());
    }
}
