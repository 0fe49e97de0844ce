package io.ouro.worker.comm;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.ServerSocketChannel;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;

import io.ouro.worker.model.Bf16;

/**
 * Rank r of a W-rank ring all-reduce of float32 buffers over authenticated TCP.
 *
 * <p>Setup ({@link #open}): bind a listening socket, publish {@code host:port} through the given
 * all-gather (in Spark: {@code BarrierTaskContext.allGather}; in tests: threads), connect to rank r+1
 * and accept rank r-1, each connection authenticated by {@link Handshake} before any data is read,
 * then close the listening socket. Connections without the secret are refused, logged and counted.
 *
 * <p>Data: the bandwidth-optimal ring (reduce-scatter then all-gather, see {@link RingSchedule} for
 * the order of summation), each segment cut into chunks of {@link RingConfig#chunkBytes()} sent as
 * frames {@code [seq, step, offset, count | count little-endian floats]} (16-byte header). A sender
 * thread writes while the calling side reads and reduces, so both directions of the ring stay busy.
 * Every rank sends {@code 2*len - |seg(r+1)| - |seg(r+2)|} floats per call ({@code 2(W-1)/W} of the
 * buffer) and ends with bit-identical results; the same inputs give the same bits on every run.
 *
 * <p>Wire dtype: fp32 unless a call asks for {@link RingConfig#gradientDtype()} bf16, which halves the payload: a
 * value is rounded to bfloat16 when sent, widened to float32 when received and added in float32; the owner of each
 * segment rounds its complete sum once, in place, before the all-gather, so every rank still ends with the same bits
 * (see {@code worker/COMM.md}).
 *
 * <p>Calls run one at a time in submission order on a background thread ({@link #submit}), so
 * gradient buckets can be handed over while the backward pass is still producing the next ones;
 * {@link #allReduceSum} and {@link #allReduceMean} wait for their own call. Every rank must make the
 * same calls with the same lengths in the same order; a mismatch fails with the frame it expected.
 * Any failure (timeout, closed peer, bad frame) makes this object unusable; close it and rebuild.
 */
public final class RingAllReduce implements AutoCloseable {

    /**
     * What to leave in the buffer: the sum over ranks, or the sum divided by W (every element, on every rank); or
     * only the halves of the ring: {@code REDUCE_SCATTER} leaves each rank's own range (see
     * {@link #submit(Op, float[], int, int, int[][])}) holding the sum and the rest of the buffer undefined;
     * {@code ALL_GATHER} starts from each rank's own range and leaves every rank holding all of them.
     */
    public enum Op { SUM, MEAN, REDUCE_SCATTER, ALL_GATHER }

    static final int HEADER_BYTES = 16;
    /** Handshakes in progress at once on the listening socket during setup. */
    static final int MAX_PENDING_HANDSHAKES = 16;
    private static final System.Logger LOG = System.getLogger(RingAllReduce.class.getName());

    private final RingConfig config;
    private final int rank;
    private final int world;
    private final List<String> addresses;
    private final PeerLink toRight;
    private final PeerLink fromLeft;
    private final ExecutorService comm;
    private final ExecutorService sender;
    private final long ioNanos;
    private final int chunkElems;
    private final ByteBuffer tx;
    private final FloatBuffer txFloats;
    private final ByteBuffer rx;
    private final FloatBuffer rxFloats;
    private final float[] scratch;
    /** bf16 views and staging, only when the ring may carry bf16. */
    private final ShortBuffer txShorts;
    private final ShortBuffer rxShorts;
    private final short[] txBits;
    private final short[] rxBits;

    private final AtomicLong payloadSent = new AtomicLong();
    private final AtomicLong framingSent = new AtomicLong();
    private final AtomicLong payloadReceived = new AtomicLong();
    private final AtomicLong framingReceived = new AtomicLong();
    private final AtomicLong calls = new AtomicLong();
    private final AtomicLong commNanos = new AtomicLong();
    private final long handshakeSent;
    private final long handshakeReceived;
    private final long refused;

    private final AtomicReference<AllReduceException> broken = new AtomicReference<>();
    private volatile boolean closed;
    private int seq;

    private RingAllReduce(RingConfig config, List<String> addresses, PeerLink toRight, PeerLink fromLeft,
                          ExecutorService sender, long refused) {
        this.config = config;
        this.rank = config.rank();
        this.world = config.worldSize();
        this.addresses = List.copyOf(addresses);
        this.toRight = toRight;
        this.fromLeft = fromLeft;
        this.sender = sender;
        this.refused = refused;
        this.ioNanos = config.ioTimeout().toNanos();
        this.chunkElems = config.chunkBytes() / Float.BYTES;
        boolean ring = world > 1;
        this.comm = ring ? Executors.newSingleThreadExecutor(daemon("ring-allreduce-r" + rank + "-recv")) : null;
        this.tx = ring ? ByteBuffer.allocateDirect(HEADER_BYTES + config.chunkBytes()).order(ByteOrder.LITTLE_ENDIAN) : null;
        this.rx = ring ? ByteBuffer.allocateDirect(HEADER_BYTES + config.chunkBytes()).order(ByteOrder.LITTLE_ENDIAN) : null;
        this.txFloats = ring ? floats(tx) : null;
        this.rxFloats = ring ? floats(rx) : null;
        this.scratch = ring ? new float[chunkElems] : null;
        boolean bf16 = ring && config.gradientDtype() == WireDtype.BF16;
        this.txShorts = bf16 ? shorts(tx) : null;
        this.rxShorts = bf16 ? shorts(rx) : null;
        this.txBits = bf16 ? new short[chunkElems] : null;
        this.rxBits = bf16 ? new short[chunkElems] : null;
        int handshakeOut = Handshake.HELLO_BYTES + Handshake.PROOF_BYTES;
        int handshakeIn = Handshake.CHALLENGE_BYTES + 1;
        this.handshakeSent = ring ? handshakeOut + handshakeIn : 0;
        this.handshakeReceived = ring ? handshakeIn + handshakeOut : 0;
    }

    /**
     * Joins the ring: binds {@code config.bindHost()} on an ephemeral port, calls {@code allGather}
     * with this rank's {@code host:port} (it must return all W addresses in rank order), then connects
     * and authenticates both neighbours within {@code config.setupTimeout()}. W = 1 opens no socket
     * and does not call {@code allGather}.
     */
    public static RingAllReduce open(RingConfig config, Function<String, List<String>> allGather) {
        int rank = config.rank();
        int world = config.worldSize();
        if (world == 1) {
            return new RingAllReduce(config, List.of("local"), null, null, null, 0);
        }
        ServerSocketChannel server = null;
        ExecutorService sender = null;
        PeerLink left = null;
        Future<PeerLink> right = null;
        try {
            server = ServerSocketChannel.open();
            server.bind(new InetSocketAddress(config.bindHost(), 0), world);
            int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
            String self = RingSetup.hostPort(config.advertiseHost(), port);
            List<String> addresses = RingSetup.validateAddresses(allGather.apply(self), self, config);
            long deadline = System.nanoTime() + config.setupTimeout().toNanos();
            int rightRank = (rank + 1) % world;
            int leftRank = (rank - 1 + world) % world;
            sender = Executors.newSingleThreadExecutor(daemon("ring-allreduce-r" + rank + "-send"));
            right = sender.submit(() -> RingSetup.connectRight(config, rightRank, addresses.get(rightRank), deadline));
            long[] refusedCount = new long[1];
            try {
                left = RingSetup.acceptLeft(server, config, leftRank, addresses.get(leftRank), deadline, refusedCount, right);
            } catch (AllReduceException acceptFailure) {
                // Report the failed connection to the right neighbour if there is one: it is the likelier cause.
                try {
                    RingSetup.awaitRight(right, deadline, config, rightRank, addresses.get(rightRank)).close();
                } catch (AllReduceException connectFailure) {
                    if (connectFailure != acceptFailure) {
                        connectFailure.addSuppressed(acceptFailure);
                    }
                    throw connectFailure;
                }
                throw acceptFailure;
            }
            PeerLink r = RingSetup.awaitRight(right, deadline, config, rightRank, addresses.get(rightRank));
            server.close();
            LOG.log(System.Logger.Level.INFO, "rank " + rank + "/" + world + " joined the ring at " + self
                    + ": sends to rank " + rightRank + " (" + addresses.get(rightRank) + "), receives from rank "
                    + leftRank + " (" + addresses.get(leftRank) + ")");
            return new RingAllReduce(config, addresses, r, left, sender, refusedCount[0]);
        } catch (IOException e) {
            RingSetup.cleanUp(server, sender, left, right);
            throw new AllReduceException("rank " + rank + ": setup failed (listening on " + config.bindHost() + "): " + e,
                    -1, null, e);
        } catch (RuntimeException e) {
            RingSetup.cleanUp(server, sender, left, right);
            throw e;
        }
    }

    /** Sums {@code buf[off, off+len)} over all ranks in place; waits for earlier submitted calls first. */
    public void allReduceSum(float[] buf, int off, int len) {
        await(submit(Op.SUM, buf, off, len));
    }

    /** As {@link #allReduceSum}, then divides by W (identically on every rank). */
    public void allReduceMean(float[] buf, int off, int len) {
        await(submit(Op.MEAN, buf, off, len));
    }

    /**
     * Queues an all-reduce of {@code buf[off, off+len)} behind the calls already submitted and
     * returns at once; the future completes when this range holds the result (or fails with an
     * {@link AllReduceException}). The caller must not touch the range until then.
     */
    public CompletableFuture<Void> submit(Op op, float[] buf, int off, int len) {
        return submit(op, buf, off, len, null);
    }

    /**
     * As {@link #submit(Op, float[], int, int)}, with the range each rank owns: {@code owned[r] = {start, length}}
     * relative to {@code off}, tiling {@code [0, len)} in any order (null: the even split, rank r owning segment
     * (r+1) mod W as {@link RingSchedule} cuts it). Every rank must pass the same ranges. Whatever the split, each
     * element is summed in the same order on every rank, so the result is bit-identical across ranks.
     */
    public CompletableFuture<Void> submit(Op op, float[] buf, int off, int len, int[][] owned) {
        return submit(op, WireDtype.FP32, buf, off, len, owned);
    }

    /**
     * As {@link #submit(Op, float[], int, int, int[][])}, with the values on the wire in {@code wire}: fp32, or the
     * ring's {@link RingConfig#gradientDtype()} (the one every rank agreed on at setup). Every rank must pass the same
     * dtype for the same call. With bf16 each element's result is the float32 sum in the documented order, each
     * partial sum rounded to bfloat16 as it is sent and the complete sum rounded once by its owner, which keeps the
     * rounded value: {@code SUM}, {@code MEAN} (divided after) and {@code REDUCE_SCATTER} leave the same bits in the
     * owned range, and after an {@code ALL_GATHER} every rank, owners included, holds the rounded values.
     */
    public CompletableFuture<Void> submit(Op op, WireDtype wire, float[] buf, int off, int len, int[][] owned) {
        if (op == null) {
            throw new IllegalArgumentException("RingAllReduce.submit: op is null");
        }
        if (wire != WireDtype.FP32 && wire != config.gradientDtype()) {
            throw new IllegalArgumentException("RingAllReduce.submit: wire dtype " + (wire == null ? "null" : wire.yamlName())
                    + " on a ring set up for fp32 and " + config.gradientDtype().yamlName());
        }
        if (buf == null) {
            throw new IllegalArgumentException("RingAllReduce.submit: buf is null");
        }
        if (off < 0 || len < 0 || off > buf.length - len) {
            throw new IllegalArgumentException("RingAllReduce.submit: range [off=" + off + ", len=" + len
                    + ") outside the buffer of length " + buf.length);
        }
        if (owned != null && owned.length != world) {
            throw new IllegalArgumentException("RingAllReduce.submit: " + owned.length + " owned ranges for " + world
                    + " ranks");
        }
        RingSchedule schedule = new RingSchedule(world, rank, len, chunkElems, owned);
        CompletableFuture<Void> done = new CompletableFuture<>();
        if (closed) {
            done.completeExceptionally(closedError());
            return done;
        }
        if (world == 1 || len == 0) {
            done.complete(null);
            return done;
        }
        try {
            comm.execute(() -> {
                try {
                    execute(op, wire, buf, off, len, schedule);
                    done.complete(null);
                } catch (Throwable t) {
                    done.completeExceptionally(t);
                }
            });
        } catch (RejectedExecutionException e) {
            done.completeExceptionally(closedError());
        }
        return done;
    }

    /** Counters since {@link #open}. */
    public CommStats stats() {
        return new CommStats(payloadSent.get(), framingSent.get(), payloadReceived.get(), framingReceived.get(),
                handshakeSent, handshakeReceived, refused, calls.get(), commNanos.get());
    }

    public int rank() {
        return rank;
    }

    public int worldSize() {
        return world;
    }

    /** The dtype gradients may travel in ({@link RingConfig#gradientDtype()}), the same on every rank of the ring. */
    public WireDtype gradientDtype() {
        return config.gradientDtype();
    }

    /** The {@code host:port} of every rank, in rank order, as exchanged at setup. */
    public List<String> addresses() {
        return addresses;
    }

    /** Fails the call in flight (its peers then see the connection close), fails queued calls, releases sockets. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (world == 1) {
            return;
        }
        toRight.abort("rank " + rank + " was closed");
        fromLeft.abort("rank " + rank + " was closed");
        toRight.close();
        fromLeft.close();
        comm.shutdown();
        sender.shutdown();
        try {
            if (!comm.awaitTermination(config.ioTimeout().toMillis(), TimeUnit.MILLISECONDS)
                    || !sender.awaitTermination(config.ioTimeout().toMillis(), TimeUnit.MILLISECONDS)) {
                LOG.log(System.Logger.Level.WARNING, "rank " + rank + ": communication threads still running after close");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ---------------------------------------------------------------- one call, on the comm thread

    private void execute(Op op, WireDtype wire, float[] buf, int off, int len, RingSchedule schedule) {
        if (closed) {
            throw closedError();
        }
        AllReduceException earlier = broken.get();
        if (earlier != null) {
            throw new AllReduceException("rank " + rank + ": unusable after an earlier failure: " + earlier.getMessage(),
                    earlier.peerRank(), earlier.peerAddress(), earlier);
        }
        long start = System.nanoTime();
        int first = op == Op.ALL_GATHER ? world - 1 : 0;
        int end = op == Op.REDUCE_SCATTER ? world - 1 : schedule.steps();
        Call call = new Call(op, wire, buf, off, len, ++seq, schedule, first, end);
        if (op == Op.ALL_GATHER && wire == WireDtype.BF16) {
            // the owner keeps what it sends (in a full call the last reduce-scatter step rounds it, see receive)
            int own = (rank + 1) % world;
            int from = off + schedule.segmentStart(own);
            for (int i = from; i < from + schedule.segmentLength(own); i++) {
                buf[i] = Bf16.round(buf[i]);
            }
        }
        Future<?> sending = sender.submit(() -> {
            try {
                send(call);
            } catch (Throwable t) {
                call.fail(t);
            }
        });
        try {
            receive(call);
        } catch (Throwable t) {
            call.fail(t);
        }
        joinSender(call, sending);
        Throwable failure = call.failure.get();
        if (failure != null) {
            AllReduceException e = failure instanceof AllReduceException a ? a
                    : new AllReduceException("rank " + rank + ": all-reduce #" + call.seq + " failed: " + failure,
                            -1, null, failure);
            broken.compareAndSet(null, e);
            throw e;
        }
        if (op == Op.MEAN) {
            float w = world;
            for (int i = off; i < off + len; i++) {
                buf[i] /= w;
            }
        }
        calls.incrementAndGet();
        commNanos.addAndGet(System.nanoTime() - start);
    }

    /** Sender thread: the frames of every step, chunk c of step k+1 once chunk c of step k has arrived. */
    private void send(Call call) {
        RingSchedule s = call.schedule;
        for (int step = call.firstStep; step < call.endStep; step++) {
            int seg = s.sendSegment(step);
            int segStart = s.segmentStart(seg);
            int segLen = s.segmentLength(seg);
            int chunks = s.chunks(seg);
            for (int c = 0; c < chunks; c++) {
                if (step > call.firstStep) {
                    call.awaitReceived(call.recvBase[step - 1] + c + 1, step, c);
                }
                int at = segStart + c * chunkElems;
                int count = Math.min(chunkElems, segLen - c * chunkElems);
                tx.clear();
                tx.putInt(call.seq).putInt(step).putInt(at).putInt(count);
                if (call.wire == WireDtype.BF16) {
                    // a partial sum (reduce-scatter) or a complete one, already rounded by its owner (all-gather)
                    float[] b = call.buf;
                    int src = call.off + at;
                    for (int i = 0; i < count; i++) {
                        txBits[i] = Bf16.bits(b[src + i]);
                    }
                    txShorts.clear();
                    txShorts.put(txBits, 0, count);
                } else {
                    txFloats.clear();
                    txFloats.put(call.buf, call.off + at, count);
                }
                int bytes = count * call.wire.bytes;
                tx.limit(HEADER_BYTES + bytes).position(0);
                toRight.writeFully(tx, ioNanos, frameName(call, step, at, count));
                framingSent.addAndGet(HEADER_BYTES);
                payloadSent.addAndGet(bytes);
                call.sentFrames.incrementAndGet();
            }
        }
    }

    /** Comm thread: read each expected frame, check its header, add it in (reduce-scatter) or copy it (all-gather). */
    private void receive(Call call) {
        RingSchedule s = call.schedule;
        long done = 0;
        for (int step = call.firstStep; step < call.endStep; step++) {
            int seg = s.recvSegment(step);
            int segStart = s.segmentStart(seg);
            int segLen = s.segmentLength(seg);
            int chunks = s.chunks(seg);
            boolean reduce = s.reduces(step);
            // bf16: the last reduce-scatter step completes this rank's own segment; round it in place once, so the
            // owner holds the same bits it will send in the all-gather
            boolean roundInPlace = call.wire == WireDtype.BF16 && step == world - 2;
            for (int c = 0; c < chunks; c++) {
                int at = segStart + c * chunkElems;
                int count = Math.min(chunkElems, segLen - c * chunkElems);
                String what = frameName(call, step, at, count);
                rx.clear().limit(HEADER_BYTES);
                fromLeft.readFully(rx, ioNanos, "the header of " + what);
                int gotSeq = rx.getInt(0);
                int gotStep = rx.getInt(4);
                int gotAt = rx.getInt(8);
                int gotCount = rx.getInt(12);
                if (gotSeq != call.seq || gotStep != step || gotAt != at || gotCount != count) {
                    throw new AllReduceException("rank " + rank + ": rank " + fromLeft.peerRank + " ("
                            + fromLeft.peerAddress + ") sent frame [call #" + gotSeq + ", step " + gotStep
                            + ", offset " + gotAt + ", count " + gotCount + "] where " + what
                            + " was expected: do all ranks submit the same lengths in the same order?",
                            fromLeft.peerRank, fromLeft.peerAddress);
                }
                int bytes = count * call.wire.bytes;
                rx.limit(HEADER_BYTES + bytes);
                fromLeft.readFully(rx, ioNanos, "the payload of " + what);
                int dst = call.off + at;
                if (call.wire == WireDtype.BF16) {
                    rxShorts.clear().limit(count);
                    rxShorts.get(rxBits, 0, count);
                    float[] b = call.buf;
                    if (roundInPlace) {
                        for (int i = 0; i < count; i++) {
                            b[dst + i] = Bf16.round(b[dst + i] + Bf16.value(rxBits[i]));
                        }
                    } else if (reduce) {
                        for (int i = 0; i < count; i++) {
                            b[dst + i] += Bf16.value(rxBits[i]);
                        }
                    } else {
                        for (int i = 0; i < count; i++) {
                            b[dst + i] = Bf16.value(rxBits[i]);
                        }
                    }
                } else if (reduce) {
                    rxFloats.clear().limit(count);
                    rxFloats.get(scratch, 0, count);
                    float[] b = call.buf;
                    for (int i = 0; i < count; i++) {
                        b[dst + i] += scratch[i];
                    }
                } else {
                    rxFloats.clear().limit(count);
                    rxFloats.get(call.buf, dst, count);
                }
                framingReceived.addAndGet(HEADER_BYTES);
                payloadReceived.addAndGet(bytes);
                call.received(++done);
            }
        }
    }

    /** Waits for the sender; each wait is bounded by the I/O timeout as long as the sender makes no progress. */
    private void joinSender(Call call, Future<?> sending) {
        long lastFrames = -1;
        while (true) {
            try {
                sending.get(ioNanos, TimeUnit.NANOSECONDS);
                return;
            } catch (TimeoutException e) {
                long frames = call.sentFrames.get();
                if (frames == lastFrames) {
                    call.fail(new AllReduceException("rank " + rank + ": the sender to rank " + toRight.peerRank + " ("
                            + toRight.peerAddress + ") made no progress for " + config.ioTimeout().toMillis()
                            + " ms in all-reduce #" + call.seq, toRight.peerRank, toRight.peerAddress));
                    sending.cancel(true);
                    return;
                }
                lastFrames = frames;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                call.fail(new AllReduceException("rank " + rank + ": interrupted while sending all-reduce #" + call.seq,
                        -1, null, e));
                return;
            } catch (ExecutionException e) {
                call.fail(e.getCause());
                return;
            }
        }
    }

    private String frameName(Call call, int step, int at, int count) {
        String phase = step < world - 1 ? "reduce-scatter" : "all-gather";
        return "frame [call #" + call.seq + ", step " + step + " (" + phase + "), offset " + at + ", count " + count + "]";
    }

    private AllReduceException closedError() {
        return new AllReduceException("rank " + rank + ": the all-reduce was closed", -1, null);
    }

    /** State shared by the sender and the receiver of one call. */
    private final class Call {
        final Op op;
        final WireDtype wire;
        final float[] buf;
        final int off;
        final int len;
        final int seq;
        final RingSchedule schedule;
        /** The steps of the schedule this call runs: all, or one half. */
        final int firstStep, endStep;
        /** Index, in receive order, of the first frame of each step (from firstStep). */
        final long[] recvBase;
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final AtomicLong sentFrames = new AtomicLong();
        private long receivedFrames;

        Call(Op op, WireDtype wire, float[] buf, int off, int len, int seq, RingSchedule schedule, int firstStep,
             int endStep) {
            this.op = op;
            this.wire = wire;
            this.buf = buf;
            this.off = off;
            this.len = len;
            this.seq = seq;
            this.schedule = schedule;
            this.firstStep = firstStep;
            this.endStep = endStep;
            this.recvBase = new long[schedule.steps() + 1];
            for (int k = firstStep; k < endStep; k++) {
                recvBase[k + 1] = recvBase[k] + schedule.chunks(schedule.recvSegment(k));
            }
        }

        synchronized void received(long frames) {
            receivedFrames = frames;
            notifyAll();
        }

        synchronized void awaitReceived(long frames, int step, int chunk) {
            long deadline = System.nanoTime() + ioNanos;
            while (receivedFrames < frames) {
                if (failure.get() != null) {
                    throw new AllReduceException("rank " + rank + ": sending stopped, the receiving side failed",
                            -1, null);
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new AllReduceException("rank " + rank + ": timed out after " + config.ioTimeout().toMillis()
                            + " ms waiting for chunk " + chunk + " of step " + (step - 1) + " of all-reduce #" + seq
                            + " from rank " + fromLeft.peerRank + " (" + fromLeft.peerAddress + ") before forwarding it",
                            fromLeft.peerRank, fromLeft.peerAddress);
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new AllReduceException("rank " + rank + ": sender interrupted", -1, null, e);
                }
            }
        }

        /** Records the first failure and closes both links, so the peers learn of it at once. */
        void fail(Throwable t) {
            if (failure.compareAndSet(null, t)) {
                String reason = "all-reduce #" + seq + " failed on rank " + rank + ": " + t.getMessage();
                toRight.abort(reason);
                fromLeft.abort(reason);
                toRight.close();
                fromLeft.close();
                synchronized (this) {
                    notifyAll();
                }
            }
        }
    }

    /** A fresh 32-byte random secret for one run. */
    public static byte[] newSecret() {
        return Handshake.newSecret();
    }

    private static void await(CompletableFuture<Void> f) {
        try {
            f.join();
        } catch (CompletionException e) {
            Throwable c = e.getCause();
            if (c instanceof AllReduceException a) {
                throw new AllReduceException(a.getMessage(), a.peerRank(), a.peerAddress(), a);
            }
            throw e;
        }
    }

    private static FloatBuffer floats(ByteBuffer frame) {
        return frame.duplicate().position(HEADER_BYTES).slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    }

    private static ShortBuffer shorts(ByteBuffer frame) {
        return frame.duplicate().position(HEADER_BYTES).slice().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
    }

    static java.util.concurrent.ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }

    static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AllReduceException("interrupted while connecting", -1, null, e);
        }
    }
}
