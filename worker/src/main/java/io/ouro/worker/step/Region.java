package io.ouro.worker.step;

/**
 * A place in a backend's activation memory: which of its arrays, and the offset in elements. The step schedule
 * ({@link LoopSchedule}) names every activation by a region; each {@link StepOps} implementation decides what an
 * array is (a Java array, a device buffer).
 */
public record Region(int array, int offset) {

    public Region {
        if (array < 0 || offset < 0) {
            throw new IllegalArgumentException("Region: negative array " + array + " or offset " + offset);
        }
    }

    /** The region {@code delta} elements further into the same array. */
    public Region at(long delta) {
        return new Region(array, Math.toIntExact(offset + delta));
    }
}
