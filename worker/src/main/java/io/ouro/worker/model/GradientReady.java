package io.ouro.worker.model;

/**
 * What a training step's backward tells as it goes: group {@code g} of {@link ParamLayout#gradientGroups()} has its
 * final gradient for the batch (every micro-batch added in), so it can leave the device while the backward goes on.
 */
@FunctionalInterface
public interface GradientReady {

    /** Nobody listens. */
    GradientReady NONE = group -> { };

    /** Called on the backward's thread, once per group, in the order of the groups (0, 1, ...). */
    void ready(int group);
}
