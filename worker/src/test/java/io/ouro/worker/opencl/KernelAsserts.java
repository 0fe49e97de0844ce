package io.ouro.worker.opencl;

import java.util.Arrays;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the kernel parity tests share: the comparison of a kernel's output with its reference op's, and slices. */
final class KernelAsserts {

    private KernelAsserts() {
    }

    /**
     * {@code count} values of {@code actual} from {@code aOff} against {@code expected} from {@code eOff}: the worst
     * {@code |e - a| / max(1, |e|)} (absolute near zero, relative on large values) at most {@code tol}; the worst is
     * printed after {@code label}.
     */
    static void assertClose(String label, String what, float[] expected, int eOff, float[] actual, int aOff,
                            int count, double tol) {
        double worst = 0;
        for (int i = 0; i < count; i++) {
            double e = expected[eOff + i], a = actual[aOff + i];
            worst = Math.max(worst, Math.abs(e - a) / Math.max(1, Math.abs(e)));
        }
        System.out.printf(Locale.ROOT, "%s %-44s max error %.2e%n", label, what, worst);
        assertTrue(worst <= tol, what + ": max error " + worst + " > " + tol);
    }

    /** Launches of {@code op} in the ops' profile since {@code startProfile} (0 when it did not run). */
    static long launches(OpenClOps ops, DeviceOp op) {
        long[] c = ops.profile().get(op.profileName());
        return c == null ? 0 : c[1];
    }

    static float[] slice(float[] a, int off, int count) {
        return Arrays.copyOfRange(a, off, off + count);
    }
}
