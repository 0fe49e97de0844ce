package io.ouro.orchestrator.train;

import io.ouro.worker.backend.TrainingBackend;
import io.ouro.worker.comm.AllReduceException;
import io.ouro.worker.comm.RingAllReduce;
import io.ouro.worker.comm.RingGroup;

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
 * moments it keeps); after the update, {@link #gatherParameters} all-gathers the updated parameters by the same
 * buckets.
 *
 * <p>Wire: gradients travel in the ring's {@link RingGroup#gradientDtype()} ({@code train.exchange_dtype}: fp32, or
 * bf16 rounded when sent and summed in fp32, each rank's owned sum rounded once); the parameters of
 * {@link #gatherParameters} and the scalar sums of the step always travel in fp32.
 *
 * <p>Summation order: each bucket's elements are summed around the ring in an order fixed by the bucket and the
 * ranges (see {@code RingSchedule}), the same on every rank; it differs from one all-reduce of the whole gradient
 * for W &gt; 2 (for W = 2, a + b = b + a exactly), so W = 1 and W = k agree within float rounding, as before.
 */
final class GradientExchange {

    /** One bucket: flat parameters [from, from + len), its host copy, and the call in flight. */
    private static final class Bucket {
        final long from;
        final int len;
        final float[] data;
        final int[][] owned;
        CompletableFuture<Void> done;
        long startNanos;
        volatile long endNanos;

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

    // this step
    private float weight;
    private int nextGroup;
    private int calls;
    private long backwardEnd;

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
        if (g != nextGroup) {
            throw new IllegalStateException("gradient group " + g + " reported where group " + nextGroup
                    + " was due: the backward must report the groups in order");
        }
        for (Bucket k : groups.get(g)) {
            b.readGradients(k.from, k.data, 0, k.len, weight);
            submit(k, owners == null ? RingAllReduce.Op.SUM : RingAllReduce.Op.REDUCE_SCATTER);
        }
        nextGroup++;
    }

    /**
     * The backward is over: the groups it did not report go now, as zeros when this rank's forward failed (it still
     * takes part in every call, adding nothing).
     */
    void endBackward(boolean failed) {
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
        backwardEnd = System.nanoTime();
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
        // the busy time: the union of the calls' [start, end], a call starting no earlier than the previous call
        // on its ring ended
        long[] free = new long[rings.connections()];
        List<long[]> spans = new ArrayList<>();
        for (int i = 0; i < order.size(); i++) {
            Bucket k = order.get(i);
            int ring = i % free.length;
            long start = Math.max(k.startNanos, free[ring]);
            long end = Math.max(start, k.endNanos);
            free[ring] = end;
            spans.add(new long[] {start, end});
        }
        spans.sort((x, y) -> Long.compare(x[0], y[0]));
        long busy = 0, exposed = 0;
        for (int i = 0; i < spans.size(); ) {
            long curS = spans.get(i)[0], curE = spans.get(i)[1];
            for (i++; i < spans.size() && spans.get(i)[0] <= curE; i++) {
                curE = Math.max(curE, spans.get(i)[1]);
            }
            busy += curE - curS;
            exposed += Math.max(0, curE - Math.max(curS, backwardEnd));
        }
        double hidden = busy > 0 ? 1 - (double) exposed / busy : Double.NaN;
        return new double[] {busy / 1e6, hidden};
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

    /** ZeRO-1, after the update: every rank's updated part goes to every rank, bucket by bucket. */
    void gatherParameters() {
        int r = rings.rank();
        List<CompletableFuture<Void>> f = new ArrayList<>();
        calls = 0;
        for (Bucket k : order) {
            int[] o = k.owned[r];
            if (o[1] > 0) {
                b.readParameters(k.from + o[0], k.data, o[0], o[1]);
            }
            f.add(rings.submit(calls++, RingAllReduce.Op.ALL_GATHER, k.data, 0, k.len, k.owned));
        }
        long deadline = System.nanoTime() + timeoutNanos;
        for (int i = 0; i < order.size(); i++) {
            waitFor(f.get(i), deadline);
            Bucket k = order.get(i);
            b.writeParameters(k.from, k.data, 0, k.len);
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
