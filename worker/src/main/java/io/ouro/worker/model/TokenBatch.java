package io.ouro.worker.model;

/** Checks of one step's token and target ids, shared by every backend. */
public final class TokenBatch {

    /** The target that marks a position without a next token: no loss, no gradient. */
    public static final int NO_TARGET = -1;

    private TokenBatch() {
    }

    /**
     * Checks lengths and id ranges, naming the first offending position.
     *
     * @return the number of positions with a target (at least one)
     */
    public static int validate(int[] tokens, int[] targets, int batch, int seqLen, int vocab) {
        if (batch <= 0 || seqLen <= 0) {
            throw new IllegalArgumentException("batch and seqLen must be positive, got batch " + batch
                    + ", seqLen " + seqLen);
        }
        long expected = (long) batch * seqLen;
        if (tokens.length != expected || targets.length != expected) {
            throw new IllegalArgumentException("tokens/targets: expected length batch*seqLen = " + expected
                    + ", got " + tokens.length + " and " + targets.length);
        }
        int valid = 0;
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocab) {
                throw new IllegalArgumentException("tokens[" + i + "] = " + tokens[i] + " is outside [0, " + vocab + ")");
            }
            if (targets[i] < NO_TARGET || targets[i] >= vocab) {
                throw new IllegalArgumentException("targets[" + i + "] = " + targets[i]
                        + " is outside [0, " + vocab + ") and is not -1 (no target)");
            }
            if (targets[i] >= 0) {
                valid++;
            }
        }
        if (valid == 0) {
            throw new IllegalArgumentException("targets: every position is -1, there is nothing to learn from");
        }
        return valid;
    }
}
