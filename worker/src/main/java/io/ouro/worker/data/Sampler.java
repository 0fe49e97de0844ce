package io.ouro.worker.data;

import io.ouro.worker.model.TokenBatch;

/**
 * Deterministic data-parallel sampling. The token stream is cut into {@code samples()} windows of
 * {@code seqLen + 1} tokens (window i starts at {@code i * seqLen}; inputs are its first seqLen tokens,
 * targets the same shifted by one). Global sample g (g = step * globalBatch + j) is window
 * {@code perm_e(g mod samples)} of epoch {@code e = g / samples}, where {@code perm_e} is a bijection
 * keyed by (seed, stage, epoch). Rank r of W takes rows {@code [r * globalBatch / W, (r+1) * globalBatch / W)}
 * of each global batch. So the data a step sees depends only on (seed, stage, step), never on W or timing,
 * and W workers together see exactly what one worker with the global batch would.
 */
public final class Sampler {

    private final TokenSource source;
    private final int seqLen;
    private final int globalBatch;
    private final long seed;
    private final int stage;
    private final long samples;
    private IndexPermutation perm;
    private long permEpoch = -1;

    public Sampler(TokenSource source, int seqLen, int globalBatch, long seed, int stage) {
        if (seqLen < 1) {
            throw new IllegalArgumentException("seqLen must be >= 1, got " + seqLen);
        }
        if (globalBatch < 1) {
            throw new IllegalArgumentException("globalBatch must be >= 1, got " + globalBatch);
        }
        this.source = source;
        this.seqLen = seqLen;
        this.globalBatch = globalBatch;
        this.seed = seed;
        this.stage = stage;
        this.samples = (source.tokens() - 1) / seqLen;
        if (samples < 1) {
            throw new IllegalArgumentException(source.describe() + " holds " + source.tokens()
                    + " tokens, fewer than one sequence of " + (seqLen + 1));
        }
    }

    /** Training windows per epoch. */
    public long samples() {
        return samples;
    }

    public int seqLen() {
        return seqLen;
    }

    public int globalBatch() {
        return globalBatch;
    }

    /** Rows of the global batch rank {@code rank} of {@code world} takes. */
    public static int rowsOf(int globalBatch, int rank, int world) {
        return (int) ((long) (rank + 1) * globalBatch / world - (long) rank * globalBatch / world);
    }

    /** The window index of global sample {@code g}. */
    public synchronized long window(long g) {
        long epoch = g / samples;
        if (epoch != permEpoch) {
            perm = new IndexPermutation(samples, IndexPermutation.mix(seed * 0x100000001B3L + stage) ^ epoch);
            permEpoch = epoch;
        }
        return perm.apply(g % samples);
    }

    /** Epoch of the last sample of {@code step}. */
    public long epochAt(long step) {
        return ((step + 1) * globalBatch - 1) / samples;
    }

    /** This rank's share of global batch {@code step}: tokens and targets, rows x seqLen each. */
    public Batch batch(long step, int rank, int world) {
        if (world < 1 || rank < 0 || rank >= world) {
            throw new IllegalArgumentException("rank " + rank + " of " + world);
        }
        int first = (int) ((long) rank * globalBatch / world);
        int rows = rowsOf(globalBatch, rank, world);
        int[] tokens = new int[rows * seqLen];
        int[] targets = new int[rows * seqLen];
        int[] window = new int[seqLen + 1];
        for (int r = 0; r < rows; r++) {
            long g = step * globalBatch + first + r;
            long start = window(g) * seqLen;
            source.read(start, window, 0, seqLen + 1);
            System.arraycopy(window, 0, tokens, r * seqLen, seqLen);
            System.arraycopy(window, 1, targets, r * seqLen, seqLen);
        }
        return new Batch(step, rows, seqLen, tokens, targets);
    }

    /** One rank's batch for one step. */
    public record Batch(long step, int rows, int seqLen, int[] tokens, int[] targets) {

        /** Checks ids against the vocabulary; returns the positions with a target. */
        public int validate(int vocab) {
            return TokenBatch.validate(tokens, targets, rows, seqLen, vocab);
        }
    }
}
