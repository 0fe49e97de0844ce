package io.ouro.worker.infer;

/**
 * When a token being decoded stops looping (looplm-spec §5): after all T steps, at a static step k, or by Q-exit at
 * the first step whose exit CDF {@code 1 - S_t} reaches q. The last step always exits.
 *
 * @param step 0-based static exit step (STATIC)
 * @param q    Q-exit threshold in [0, 1] (Q_EXIT)
 */
public record ExitPolicy(Kind kind, int step, double q) {

    public enum Kind { ALL, STATIC, Q_EXIT }

    public ExitPolicy {
        if (kind == Kind.STATIC && step < 0) {
            throw new IllegalArgumentException("static exit: expected a step >= 1, got " + (step + 1));
        }
        if (kind == Kind.Q_EXIT && !(q >= 0 && q <= 1)) {
            throw new IllegalArgumentException("Q-exit: expected a threshold q in [0, 1], got " + q);
        }
    }

    public static ExitPolicy all() {
        return new ExitPolicy(Kind.ALL, 0, 0);
    }

    /** Exit at step {@code k}, 1-based as users count steps. */
    public static ExitPolicy atStep(int k) {
        return new ExitPolicy(Kind.STATIC, k - 1, 0);
    }

    public static ExitPolicy qExit(double q) {
        return new ExitPolicy(Kind.Q_EXIT, 0, q);
    }

    /** "all", "step:K" or "q:Q" (CLI spelling). */
    public static ExitPolicy parse(String s) {
        if (s.equals("all")) {
            return all();
        }
        try {
            if (s.startsWith("step:")) {
                return atStep(Integer.parseInt(s.substring(5)));
            }
            if (s.startsWith("q:")) {
                return qExit(Double.parseDouble(s.substring(2)));
            }
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("exit: expected all, step:K or q:Q, got '" + s + "'", e);
        }
        throw new IllegalArgumentException("exit: expected all, step:K or q:Q, got '" + s + "'");
    }

    /** Whether a token exits after 0-based step {@code t} of {@code steps}, its exit CDF then being {@code cdf}. */
    public boolean exitsAfter(int t, int steps, double cdf) {
        if (t >= steps - 1) {
            return true;
        }
        return switch (kind) {
            case ALL -> false;
            case STATIC -> t >= step;
            case Q_EXIT -> cdf >= q;
        };
    }

    @Override
    public String toString() {
        return switch (kind) {
            case ALL -> "all";
            case STATIC -> "step:" + (step + 1);
            case Q_EXIT -> "q:" + q;
        };
    }
}
