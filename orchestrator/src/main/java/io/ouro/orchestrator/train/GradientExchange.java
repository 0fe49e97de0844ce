package io.ouro.orchestrator.train;

import io.ouro.worker.backend.TrainingBackend;
import io.ouro.worker.comm.AllReduceException;
import io.ouro.worker.comm.RingAllReduce;
import io.ouro.worker.comm.RingGroup;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One rank's gradient exchange for a step, overlapped with the backward. The backward tells, group by group
 * ({@link io.ouro.worker.model.ParamLayout#gradientGroups()}: the tail, the layers last to first, the embedding),
 * when a gradient is final; each group, cut into buckets of at most {@code bucketFloats}, leaves the device at once,
 * multiplied there by this rank's token count (the token weighting), and bucket {@code i} goes to ring
 * {@code i mod connections}, whose threads all-reduce it while the backward goes on. Every rank cuts the same
 * buckets in the same order (the groups are fixed by the layout), so the calls match.
 *
 * <p>Replicated optimizer: each bucket is summed over the ranks (ring reduce-scatter and all-gather) and written
 * back. ZeRO-1 ({@code owners} given): each bucket is only reduce-scattered, so that rank r ends holding the sum of
 * the part of the bucket inside its range {@code [owners[r], owners[r+1])} of the flat layout (the range whose
 * moments it keeps); after the update, {@link #startGather} all-gathers the updated parameters by the same buckets,
 * in the order the next forward reads them (the embedding, the layers first to last, the tail), and returns: the
 * gather runs behind what follows, and the next forward waits for each group just before its first read
 * ({@link #awaitParameters}, the step's {@link io.ouro.worker.model.ParameterReadiness}), which writes the group into
 * the backend on the forward's thread. The all-gather copies bits, so the parameters are those of the synchronous
 * order; only the time they arrive changes.
 *
 * <p>Wire: gradients travel in the ring's {@link RingGroup#gradientDtype()} ({@code train.exchange_dtype}: fp32, or
 * bf16 rounded when sent and summed in fp32, each rank's owned sum rounded once); the parameters of
 * {@link #startGather} and the scalar sums of the step always travel in fp32.
 *
 * <p>Summation order: each bucket's elements are summed around the ring in an order fixed by the bucket and the
 * ranges (see {@code RingSchedule}), the same on every rank; it differs from one all-reduce of the whole gradient
 * for W &gt; 2 (for W = 2, a + b = b + a exactly), so W = 1 and W = k agree within float rounding, as before.
 */
final class GradientExchange {

    /**
     * Tests only; null in production. How long to hold on, at most, so that the overlap is certain rather than a race
     * on a loaded machine: the backward, once it has reported the first group, waits until that group's first bucket
     * is exchanged (so that exchange provably ran before the backward ended: {@code hidden > 0}), and the next
     * forward, where it first asks for parameters ({@link #awaitParameters}, not {@link #finishGather}), waits until
     * the whole all-gather is done (so it provably ran while the rank was not waiting: {@code gather_hidden = 1}).
     * Neither hold counts as waiting for communication. Without the overlap the holds change nothing: an exchange
     * started after the backward is not hidden, nor is an all-gather waited for at the end of its step (beyond the
     * moments its buckets take to be read out and submitted).
     */
    static volatile Duration overlapHold;

    /** One bucket: flat parameters [from, from + len), its host copy, and the call in flight. */
    private static final class Bucket {
        final long from;
        final int len;
        final float[] data;
        final int[][] owned;
        CompletableFuture<Void> done;
        long startNanos;
        volatile long endNanos;
        // ZeRO-1's all-gather of the parameters
        CompletableFuture<Void> gather;
        long gatherStart;
        volatile long gatherEnd;

        Bucket(long from, int len, int[][] owned) {
            this.from = from;
            this.len = len;
            this.data = new float[len];
            this.owned = owned;
        }
    }

    private final TrainingBackend b;
    private final RingGroup rings;
    private final long[] owners;
    private final long trainFrom, trainTo;
    private final long timeoutNanos;
    /** The buckets of each group, cut once (the host arrays are reused every step). */
    private final List<List<Bucket>> groups = new ArrayList<>();
    private final List<Bucket> order = new ArrayList<>();
    /** The buckets in the order the forward reads them (the groups last to first): the all-gather's order. */
    private final List<Bucket> forwardOrder = new ArrayList<>();

    // this step
    private float weight;
    private int nextGroup;
    private int calls;
    private long backwardEnd;

    // the all-gather in flight: which groups are written into the backend, the intervals this rank's thread waited
    private boolean gathering;
    private boolean held;
    private final boolean[] current;
    private final List<long[]> waits = new ArrayList<>();
    private long waitedNanos;
    private double[] gatherFigures = {Double.NaN, Double.NaN};

    /**
     * @param trainFrom    the flat range the step trains ([0, total) in Stage I; the gate in Stage II): gradients
     *                     outside it are not exchanged
     * @param bucketFloats the largest bucket
     * @param owners       ZeRO-1: W+1 bounds of the ranks' ranges of the flat layout; null for the replicated optimizer
     */
    GradientExchange(TrainingBackend b, RingGroup rings, long trainFrom, long trainTo, int bucketFloats, long[] owners,
                     long timeoutMillis) {
        if (bucketFloats < 1) {
            throw new IllegalArgumentException("bucket of " + bucketFloats + " floats");
        }
        this.b = b;
        this.rings = rings;
        this.owners = owners;
        this.trainFrom = trainFrom;
        this.trainTo = trainTo;
        this.timeoutNanos = TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        for (long[] g : b.layout().gradientGroups()) {
            List<Bucket> list = new ArrayList<>();
            long from = Math.max(g[0], trainFrom), to = Math.min(g[1], trainTo);
            for (long a = from; a < to; a += bucketFloats) {
                int len = (int) Math.min(bucketFloats, to - a);
                Bucket k = new Bucket(a, len, owners == null ? null : owned(a, len, owners));
                list.add(k);
                order.add(k);
            }
            groups.add(list);
        }
        for (int g = groups.size() - 1; g >= 0; g--) {
            forwardOrder.addAll(groups.get(g));
        }
        this.current = new boolean[groups.size()];
    }

    /** The part of [from, from + len) each rank owns, relative to {@code from}. */
    static int[][] owned(long from, long len, long[] owners) {
        int w = owners.length - 1;
        int[][] out = new int[w][];
        for (int r = 0; r < w; r++) {
            long a = Math.min(Math.max(owners[r], from), from + len), e = Math.min(Math.max(owners[r + 1], from), from + len);
            out[r] = new int[] {(int) (a - from), (int) (e - a)};
        }
        return out;
    }

    boolean sharded() {
        return owners != null;
    }

    /** A new step: this rank's gradient is normalised by its own {@code tokens}, which weight it in the sum. */
    void begin(int tokens) {
        this.weight = tokens;
        this.nextGroup = 0;
        this.calls = 0;
    }

    /** The backward says group {@code g} is final: its buckets leave the device and go to the rings. */
    void ready(int g) {
        // the exchange reuses the gather's host copies: every parameter must be in by now (the forward asked)
        finishGather();
        if (g != nextGroup) {
            throw new IllegalStateException("gradient group " + g + " reported where group " + nextGroup
                    + " was due: the backward must report the groups in order");
        }
        for (Bucket k : groups.get(g)) {
            b.readGradients(k.from, k.data, 0, k.len, weight);
            submit(k, owners == null ? RingAllReduce.Op.SUM : RingAllReduce.Op.REDUCE_SCATTER);
        }
        Duration hold = overlapHold;
        if (hold != null && g == 0 && !groups.get(0).isEmpty()) {
            holdFor(groups.get(0).get(0).done, hold);
        }
        nextGroup++;
    }

    /**
     * The backward is over: the groups it did not report go now, as zeros when this rank's forward failed (it still
     * takes part in every call, adding nothing).
     */
    void endBackward(boolean failed) {
        // what is reported from here on is exchanged after the backward: not hidden
        backwardEnd = System.nanoTime();
        finishGather();
        while (nextGroup < groups.size()) {
            if (failed) {
                for (Bucket k : groups.get(nextGroup)) {
                    Arrays.fill(k.data, 0f);
                    submit(k, owners == null ? RingAllReduce.Op.SUM : RingAllReduce.Op.REDUCE_SCATTER);
                }
                nextGroup++;
            } else {
                ready(nextGroup);
            }
        }
    }

    private void submit(Bucket k, RingAllReduce.Op op) {
        k.startNanos = System.nanoTime();
        k.endNanos = 0;
        // (the returned stage completes after the time is taken)
        k.done = rings.submit(calls++, op, rings.gradientDtype(), k.data, 0, k.len, k.owned).whenComplete((v, t) -> k.endNanos = System.nanoTime());
    }

    /** Waits for every bucket; returns {exchange ms (the time some ring was busy), hidden share}. */
    double[] await() {
        long deadline = System.nanoTime() + timeoutNanos;
        for (Bucket k : order) {
            waitFor(k.done, deadline);
        }
        long[] starts = new long[order.size()], ends = new long[order.size()];
        for (int i = 0; i < order.size(); i++) {
            starts[i] = order.get(i).startNanos;
            ends[i] = order.get(i).endNanos;
        }
        long busy = 0, exposed = 0;
        for (long[] span : busy(starts, ends, rings.connections())) {
            busy += span[1] - span[0];
            exposed += Math.max(0, span[1] - Math.max(span[0], backwardEnd));
        }
        double hidden = busy > 0 ? 1 - (double) exposed / busy : Double.NaN;
        return new double[] {busy / 1e6, hidden};
    }

    /**
     * The time some ring was busy with calls submitted in this order (call i on ring i mod {@code connections}): the
     * union of the calls' [start, end], a call starting no earlier than the previous call on its ring ended, as
     * disjoint spans in time order.
     */
    static List<long[]> busy(long[] starts, long[] ends, int connections) {
        long[] free = new long[connections];
        List<long[]> spans = new ArrayList<>();
        for (int i = 0; i < starts.length; i++) {
            int ring = i % connections;
            long start = Math.max(starts[i], free[ring]);
            long end = Math.max(start, ends[i]);
            free[ring] = end;
            spans.add(new long[] {start, end});
        }
        spans.sort((x, y) -> Long.compare(x[0], y[0]));
        List<long[]> union = new ArrayList<>();
        for (int i = 0; i < spans.size(); ) {
            long curS = spans.get(i)[0], curE = spans.get(i)[1];
            for (i++; i < spans.size() && spans.get(i)[0] <= curE; i++) {
                curE = Math.max(curE, spans.get(i)[1]);
            }
            union.add(new long[] {curS, curE});
        }
        return union;
    }

    /** Replicated: writes every summed bucket back to the device's gradient. */
    void writeBack() {
        for (Bucket k : order) {
            b.writeGradients(k.from, k.data, 0, k.len);
        }
    }

    /** ZeRO-1: the sum of squares of this rank's reduced parts, in double, in bucket order. */
    double ownedSumSquares() {
        int r = rings.rank();
        double ss = 0;
        for (Bucket k : order) {
            int[] o = k.owned[r];
            for (int i = o[0]; i < o[0] + o[1]; i++) {
                ss += (double) k.data[i] * k.data[i];
            }
        }
        return ss;
    }

    /** ZeRO-1: divides this rank's reduced parts by {@code divisor} (the global tokens: the mean). */
    void divideOwned(float divisor) {
        int r = rings.rank();
        for (Bucket k : order) {
            int[] o = k.owned[r];
            for (int i = o[0]; i < o[0] + o[1]; i++) {
                k.data[i] /= divisor;
            }
        }
    }

    /** ZeRO-1: scales this rank's reduced parts by {@code factor} (1: unchanged) and writes them to the device. */
    void writeOwned(float factor) {
        int r = rings.rank();
        for (Bucket k : order) {
            int[] o = k.owned[r];
            for (int i = o[0]; factor != 1f && i < o[0] + o[1]; i++) {
                k.data[i] *= factor;
            }
            if (o[1] > 0) {
                b.writeGradients(k.from + o[0], k.data, o[0], o[1]);
            }
        }
    }

    /**
     * ZeRO-1, after the update: every rank's updated part goes to every rank, bucket by bucket in the forward's order;
     * returns at once. Until {@link #awaitParameters} has been asked for a group (or {@link #finishGather}), the
     * backend holds the previous step's values of the other ranks' parts of that group.
     */
    void startGather() {
        finishGather();
        int r = rings.rank();
        calls = 0;
        for (Bucket k : forwardOrder) {
            int[] o = k.owned[r];
            if (o[1] > 0) {
                b.readParameters(k.from + o[0], k.data, o[0], o[1]);
            }
            k.gatherStart = System.nanoTime();
            k.gatherEnd = 0;
            k.gather = rings.submit(calls++, RingAllReduce.Op.ALL_GATHER, k.data, 0, k.len, k.owned)
                    .whenComplete((v, t) -> k.gatherEnd = System.nanoTime());
        }
        for (int g = 0; g < groups.size(); g++) {
            current[g] = groups.get(g).isEmpty();
        }
        waits.clear();
        held = false;
        gathering = true;
    }

    /**
     * The step's {@link io.ouro.worker.model.ParameterReadiness}: waits for group {@code g}'s buckets of the all-gather
     * and writes them into the backend, on the calling thread (the one that runs the step's ops, so the write is
     * ordered before every op that reads the group); at once when nothing is pending.
     */
    void awaitParameters(int g) {
        if (!gathering || current[g]) {
            return;
        }
        Duration hold = overlapHold;
        if (hold != null && !held) {
            held = true;
            for (Bucket k : forwardOrder) {
                holdFor(k.gather, hold);
            }
        }
        write(g);
    }

    // waits for group g's buckets (counted as waiting) and writes them into the backend
    private void write(int g) {
        long w0 = System.nanoTime(), deadline = w0 + timeoutNanos;
        for (Bucket k : groups.get(g)) {
            waitFor(k.gather, deadline);
        }
        long w1 = System.nanoTime();
        waits.add(new long[] {w0, w1});
        waitedNanos += w1 - w0;
        for (Bucket k : groups.get(g)) {
            b.writeParameters(k.from, k.data, 0, k.len);
        }
        current[g] = true;
        for (boolean c : current) {
            if (!c) {
                return;
            }
        }
        gathering = false;
        gatherFigures = gatherFigures();
    }

    /** Every group of the all-gather in flight written into the backend (forward order); at once when none is. */
    void finishGather() {
        for (int g = groups.size() - 1; gathering && g >= 0; g--) {
            if (!current[g]) {
                write(g);
            }
        }
    }

    /** The nanoseconds this rank's thread has waited for all-gathers, since it was made (a running count). */
    long gatherWaitNanos() {
        return waitedNanos;
    }

    /**
     * {busy ms, hidden share} of the last completed all-gather, then NaNs until the next one completes: the time
     * some ring was busy with it, and the share of that time this rank's thread was not waiting for it.
     */
    double[] takeGatherFigures() {
        double[] f = gatherFigures;
        gatherFigures = new double[] {Double.NaN, Double.NaN};
        return f;
    }

    private double[] gatherFigures() {
        long[] starts = new long[forwardOrder.size()], ends = new long[forwardOrder.size()];
        for (int i = 0; i < starts.length; i++) {
            starts[i] = forwardOrder.get(i).gatherStart;
            ends[i] = forwardOrder.get(i).gatherEnd;
        }
        long busy = 0, exposed = 0;
        for (long[] span : busy(starts, ends, rings.connections())) {
            busy += span[1] - span[0];
            for (long[] w : waits) {
                exposed += Math.max(0, Math.min(span[1], w[1]) - Math.max(span[0], w[0]));
            }
        }
        return new double[] {busy / 1e6, busy > 0 ? Math.max(0, 1 - (double) exposed / busy) : Double.NaN};
    }

    // tests (overlapHold): waits for f, or gives up after the hold, leaving the real wait to fail or succeed
    private static void holdFor(CompletableFuture<Void> f, Duration hold) {
        try {
            f.get(hold.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            // the real wait reports it
        }
    }

    private static void waitFor(CompletableFuture<Void> f, long deadline) {
        try {
            f.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (ExecutionException | CompletionException e) {
            Throwable c = e.getCause() != null ? e.getCause() : e;
            if (c instanceof AllReduceException a) {
                throw a;
            }
            throw new IllegalStateException("gradient exchange failed: " + c.getMessage(), c);
        } catch (TimeoutException e) {
            throw new IllegalStateException("gradient exchange: a bucket's all-reduce did not finish within "
                    + "the ring's peer timeout (train.timeout_s, or the watchdog's step bound + 10 s when shorter)");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the gradient exchange", e);
        }
    }
}
