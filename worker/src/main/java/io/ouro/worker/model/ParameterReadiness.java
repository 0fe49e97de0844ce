package io.ouro.worker.model;

/**
 * What a step's forward asks before it reads a group of parameters: group {@code g} of
 * {@link ParamLayout#gradientGroups()} (0 the tail: final norm, LM head, exit gate; 1 .. L the layers last to first;
 * L + 1 the embedding) must hold its current values. ZeRO-1 all-gathers the updated parameters while the next
 * forward runs; the implementation waits for the group's buckets and writes them into the backend before it returns,
 * so no op reads a stale range.
 */
@FunctionalInterface
public interface ParameterReadiness {

    /** Nothing pending: every parameter is current. */
    ParameterReadiness NONE = group -> { };

    /**
     * Called on the thread that runs the step's ops (on OpenCL the one that launches the kernels), before the first
     * op that reads group {@code group}, in the forward's order: the embedding, the layers first to last, the tail.
     * May be called again for a group that is current; it then returns at once.
     */
    void await(int group);
}
