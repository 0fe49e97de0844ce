package io.ouro.worker.data;

import io.ouro.worker.model.TokenBatch;

import java.util.List;

/**
 * Deterministic data-parallel sampling over a weighted mixture of token sources.
 *
 * <p>Each source's token stream is cut into windows of {@code seqLen + 1} tokens (window i starts at
 * {@code i * seqLen}; inputs are its first seqLen tokens, targets the same shifted by one). The stage's
 * samples are numbered g = 0, 1, 2, ... across its steps. Sample g goes to a source by a hierarchical
 * Bresenham split of the integer weights: source 0 takes samples where {@code floor((g+1)a0/A)} steps up,
 * the rest go on to the remaining sources the same way. So every prefix of the stream holds each source's
 * share to within one sample, and the k-th sample of a source is known in closed form. The k-th sample of
 * source j is window {@code perm_{j,e}(k mod n_j)} of its epoch {@code e = k / n_j}, where perm is a
 * bijection keyed by (seed, stage, source, epoch); a source that runs out starts a new epoch in a new
 * order, or is an error when the stage says {@code stop}.
 *
 * <p>Rank r of W takes rows {@code [r G / W, (r+1) G / W)} of each global batch of G samples. The data of
 * a step depends only on (seed, stage, step), never on W or timing: W workers together see exactly what
 * one worker with the global batch would.
 *
 * <p>{@link Layout#aligned() Aligned} sampling cuts a source into its documents instead ({@link DocumentIndex}):
 * sample k of source j is then document {@code perm_{j,e}(k mod D_j)}, a row is EOS, the document, EOS, then EOS
 * padding, and the padding's positions have no target ({@link TokenBatch#NO_TARGET}); a document longer than the
 * row is cut. With {@link Layout#answerOnly()} only the document's last token is a target (prompt/answer
 * documents whose answer is one token: the Mano task); a document longer than the row then has no target (a
 * batch with no target at all is an error), so seq_len should hold the documents. The order of samples, the split over ranks and the
 * resumption are the same as for packed windows.
 */
public final class Sampler {

    private static final long SCALE = 1_000_000;

    private final List<TokenSource> sources;
    private final List<String> names;
    private final long[] weights;
    private final long totalWeight;
    private final int seqLen;
    private final long seed;
    private final int stage;
    private final boolean stopWhenExhausted;
    private final long[] samples;
    private final IndexPermutation[] perms;
    private final long[] permEpochs;
    private final Layout layout;
    private final DocumentIndex[] docs;

    /** How rows are cut from a source: packed windows, or aligned documents (optionally the loss on the answer). */
    public record Layout(boolean aligned, boolean answerOnly) implements java.io.Serializable {

        /** Windows of the concatenated stream, every position a target: the default. */
        public static final Layout PACKED = new Layout(false, false);

        public Layout {
            if (answerOnly && !aligned) {
                throw new IllegalArgumentException("the loss on the answer alone needs aligned sampling");
            }
        }
    }

    public Sampler(List<TokenSource> sources, List<String> names, double[] weights, int seqLen, long seed, int stage,
                   boolean stopWhenExhausted) {
        this(sources, names, weights, seqLen, seed, stage, stopWhenExhausted, Layout.PACKED);
    }

    public Sampler(List<TokenSource> sources, List<String> names, double[] weights, int seqLen, long seed, int stage,
                   boolean stopWhenExhausted, Layout layout) {
        if (seqLen < 1) {
            throw new IllegalArgumentException("seqLen must be >= 1, got " + seqLen);
        }
        if (sources.isEmpty() || sources.size() != names.size() || sources.size() != weights.length) {
            throw new IllegalArgumentException("sources, names and weights must be non-empty and of one length");
        }
        this.sources = List.copyOf(sources);
        this.names = List.copyOf(names);
        this.seqLen = seqLen;
        this.seed = seed;
        this.stage = stage;
        this.stopWhenExhausted = stopWhenExhausted;
        double sum = 0;
        for (double w : weights) {
            if (!(w >= 0) || !Double.isFinite(w)) {
                throw new IllegalArgumentException("mixture weights must be finite and >= 0");
            }
            sum += w;
        }
        if (!(sum > 0)) {
            throw new IllegalArgumentException("mixture weights sum to 0");
        }
        this.weights = new long[weights.length];
        long total = 0;
        for (int j = 0; j < weights.length; j++) {
            this.weights[j] = Math.round(weights[j] / sum * SCALE);
            total += this.weights[j];
        }
        this.totalWeight = total;
        this.layout = java.util.Objects.requireNonNull(layout, "layout");
        this.samples = new long[sources.size()];
        this.docs = new DocumentIndex[sources.size()];
        for (int j = 0; j < samples.length; j++) {
            if (layout.aligned() && this.weights[j] > 0) {
                docs[j] = DocumentIndex.of(sources.get(j));
                samples[j] = docs[j].documents();
                if (samples[j] < 1) {
                    throw new IllegalArgumentException(sources.get(j).describe() + " holds no document");
                }
                continue;
            }
            samples[j] = this.weights[j] == 0 ? 1 : (sources.get(j).tokens() - 1) / seqLen;
            if (samples[j] < 1) {
                throw new IllegalArgumentException(sources.get(j).describe() + " holds " + sources.get(j).tokens()
                        + " tokens, fewer than one sequence of " + (seqLen + 1));
            }
        }
        this.perms = new IndexPermutation[samples.length];
        this.permEpochs = new long[samples.length];
        java.util.Arrays.fill(permEpochs, -1);
    }

    /** One source, fixed global batch: the common case. */
    public Sampler(TokenSource source, int seqLen, int globalBatch, long seed, int stage) {
        this(List.of(source), List.of("main"), new double[] {1}, seqLen, seed, stage, false);
        this.fixedBatch = globalBatch;
    }

    private int fixedBatch = -1;

    /** Windows per epoch of source {@code j}. */
    public long samples(int j) {
        return samples[j];
    }

    /** Windows per epoch of the first source. */
    public long samples() {
        return samples[0];
    }

    public int seqLen() {
        return seqLen;
    }

    public Layout layout() {
        return layout;
    }

    public int sources() {
        return samples.length;
    }

    public String name(int j) {
        return names.get(j);
    }

    /** The source of sample g and its index k among that source's samples. */
    public long[] pick(long g) {
        long idx = g, rem = totalWeight;
        for (int j = 0; j < weights.length - 1; j++) {
            long a = weights[j];
            long before = mulDiv(idx, a, rem);
            long after = mulDiv(idx + 1, a, rem);
            if (after > before) {
                return new long[] {j, before};
            }
            idx -= after;
            rem -= a;
        }
        return new long[] {weights.length - 1, idx};
    }

    /** How many of the first {@code n} samples go to source {@code j}. */
    public long count(int j, long n) {
        long rest = n, rem = totalWeight;
        for (int i = 0; i < weights.length - 1; i++) {
            long c = mulDiv(rest, weights[i], rem);
            if (i == j) {
                return c;
            }
            rest -= c;
            rem -= weights[i];
        }
        return rest;
    }

    private static long mulDiv(long x, long a, long b) {
        if (Math.multiplyHigh(x, a) == 0 && x * a >= 0) {
            return x * a / b;
        }
        return java.math.BigInteger.valueOf(x).multiply(java.math.BigInteger.valueOf(a))
                .divide(java.math.BigInteger.valueOf(b)).longValueExact();
    }

    /** The window of sample g: {source, window index} (document index when aligned). */
    public synchronized long[] window(long g) {
        long[] p = pick(g);
        int j = (int) p[0];
        long k = p[1];
        long epoch = k / samples[j];
        if (epoch > 0 && stopWhenExhausted) {
            throw new IllegalStateException("source " + names.get(j) + " (" + sources.get(j).describe()
                    + ") is exhausted after " + samples[j] + " sequences of " + seqLen
                    + " tokens and the stage says on_exhausted: stop");
        }
        if (epoch != permEpochs[j]) {
            perms[j] = new IndexPermutation(samples[j],
                    IndexPermutation.mix(IndexPermutation.mix(seed * 0x100000001B3L + stage) + j) ^ epoch);
            permEpochs[j] = epoch;
        }
        return new long[] {j, perms[j].apply(k % samples[j])};
    }

    /** Rows of the global batch rank {@code rank} of {@code world} takes. */
    public static int rowsOf(int globalBatch, int rank, int world) {
        return (int) ((long) (rank + 1) * globalBatch / world - (long) rank * globalBatch / world);
    }

    /** Epoch of the first source after {@code step} steps of the fixed global batch. */
    public long epochAt(long step) {
        return ((step + 1) * fixedBatch - 1) / samples[0];
    }

    /** This rank's share of global batch {@code step} of the fixed global batch. */
    public Batch batch(long step, int rank, int world) {
        if (fixedBatch < 1) {
            throw new IllegalStateException("this sampler has no fixed global batch; pass the first sample");
        }
        return batch(step, step * fixedBatch, fixedBatch, rank, world);
    }

    /**
     * This rank's share of the global batch of step {@code step}, which holds the stage's samples
     * {@code [firstSample, firstSample + globalBatch)}.
     */
    public Batch batch(long step, long firstSample, int globalBatch, int rank, int world) {
        if (world < 1 || rank < 0 || rank >= world) {
            throw new IllegalArgumentException("rank " + rank + " of " + world);
        }
        int first = (int) ((long) rank * globalBatch / world);
        int rows = rowsOf(globalBatch, rank, world);
        int[] tokens = new int[rows * seqLen];
        int[] targets = new int[rows * seqLen];
        long[][] windows = new long[rows][];
        boolean concurrent = false;
        for (int r = 0; r < rows; r++) {
            windows[r] = window(firstSample + first + r);
            concurrent |= sources.get((int) windows[r][0]).concurrentReads();
        }
        if (!concurrent || rows == 1) {
            int[] window = new int[seqLen + 1];
            for (int r = 0; r < rows; r++) {
                readRow(windows[r], window, tokens, targets, r);
            }
        } else {
            // storage latency, not bandwidth, bounds a row's read: issue the batch's windows at once
            List<java.util.concurrent.Future<?>> reads = new java.util.ArrayList<>(rows);
            for (int r = 0; r < rows; r++) {
                int row = r;
                reads.add(Reads.POOL.submit(() -> readRow(windows[row], new int[seqLen + 1], tokens, targets, row)));
            }
            Reads.await(reads);
        }
        return new Batch(step, rows, seqLen, tokens, targets);
    }

    private void readRow(long[] w, int[] window, int[] tokens, int[] targets, int r) {
        TokenSource src = sources.get((int) w[0]);
        if (!layout.aligned()) {
            src.read(w[1] * seqLen, window, 0, seqLen + 1);
            System.arraycopy(window, 0, tokens, r * seqLen, seqLen);
            System.arraycopy(window, 1, targets, r * seqLen, seqLen);
            return;
        }
        DocumentIndex d = docs[(int) w[0]];
        int len = d.length(w[1]), eos = src.eosId();
        int n = Math.min(len, seqLen); // the document's tokens that fit after the leading EOS
        java.util.Arrays.fill(window, eos);
        src.read(d.start(w[1]), window, 1, n);
        System.arraycopy(window, 0, tokens, r * seqLen, seqLen);
        int o = r * seqLen;
        if (layout.answerOnly()) {
            java.util.Arrays.fill(targets, o, o + seqLen, TokenBatch.NO_TARGET);
            if (len <= seqLen) { // position len - 1 predicts the last token; a longer document's row has none
                targets[o + len - 1] = window[len];
            }
            return;
        }
        int withTarget = Math.min(len + 1, seqLen); // the document's tokens and its closing EOS
        System.arraycopy(window, 1, targets, o, withTarget);
        java.util.Arrays.fill(targets, o + withTarget, o + seqLen, TokenBatch.NO_TARGET);
    }

    /** The threads that read windows from storage, shared by the samplers of a JVM (bounded). */
    static final class Reads {
        static final int THREADS = Integer.getInteger("ouro.data.read_threads", 16);
        static final java.util.concurrent.ExecutorService POOL = java.util.concurrent.Executors.newFixedThreadPool(
                THREADS, r -> {
                    Thread t = new Thread(r, "ouro-window-read");
                    t.setDaemon(true);
                    return t;
                });

        private Reads() {
        }

        static void await(List<java.util.concurrent.Future<?>> reads) {
            RuntimeException first = null;
            for (var f : reads) {
                try {
                    f.get();
                } catch (java.util.concurrent.ExecutionException e) {
                    if (first == null) {
                        first = e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    reads.forEach(x -> x.cancel(true));
                    throw new IllegalStateException("interrupted while reading a batch's windows", e);
                }
            }
            if (first != null) {
                throw first;
            }
        }
    }

    /** One rank's batch for one step. */
    public record Batch(long step, int rows, int seqLen, int[] tokens, int[] targets) {

        /** Checks ids against the vocabulary; returns the positions with a target. */
        public int validate(int vocab) {
            return TokenBatch.validate(tokens, targets, rows, seqLen, vocab);
        }
    }
}
