package io.ouro.worker.opencl;

import java.util.HashMap;
import java.util.Map;

/**
 * Which side holds the fresh copy of each device buffer. On pocl's CPU driver the device buffer is
 * the host array itself, so a missing upload or download goes unnoticed there and breaks on a GPU;
 * tracking the sides and checking them on every launch and every host read makes transfer mistakes
 * fail on any device.
 */
public final class Residency {

    public enum Side { BOTH, HOST, DEVICE }

    private final Map<OpenClOps.Buffer, Side> sides = new HashMap<>();

    Residency() {
    }

    public Side side(OpenClOps.Buffer b) {
        return sides.getOrDefault(b, Side.BOTH);
    }

    void set(OpenClOps.Buffer b, Side s) {
        sides.put(b, s);
    }

    /** A kernel is about to read or write b: the device copy must be current. */
    void requireDevice(OpenClOps.Buffer b) {
        if (side(b) == Side.HOST) {
            throw new IllegalStateException("buffer " + b + " was changed on the host and not uploaded");
        }
    }

    /** The host is about to read b: the host copy must be current. */
    void requireHost(OpenClOps.Buffer b) {
        if (side(b) == Side.DEVICE) {
            throw new IllegalStateException("buffer " + b + " was changed on the device and not downloaded");
        }
    }
}
