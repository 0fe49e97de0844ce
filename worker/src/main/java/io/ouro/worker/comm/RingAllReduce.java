package io.ouro.worker.comm;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
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
            String self = hostPort(config.advertiseHost(), port);
            List<String> addresses = validateAddresses(allGather.apply(self), self, config);
            long deadline = System.nanoTime() + config.setupTimeout().toNanos();
            int rightRank = (rank + 1) % world;
            int leftRank = (rank - 1 + world) % world;
            sender = Executors.newSingleThreadExecutor(daemon("ring-allreduce-r" + rank + "-send"));
            right = sender.submit(() -> connectRight(config, rightRank, addresses.get(rightRank), deadline));
            long[] refusedCount = new long[1];
            try {
                left = acceptLeft(server, config, leftRank, addresses.get(leftRank), deadline, refusedCount, right);
            } catch (AllReduceException acceptFailure) {
                // Report the failed connection to the right neighbour if there is one: it is the likelier cause.
                try {
                    awaitRight(right, deadline, config, rightRank, addresses.get(rightRank)).close();
                } catch (AllReduceException connectFailure) {
                    if (connectFailure != acceptFailure) {
                        connectFailure.addSuppressed(acceptFailure);
                    }
                    throw connectFailure;
                }
                throw acceptFailure;
            }
            PeerLink r = awaitRight(right, deadline, config, rightRank, addresses.get(rightRank));
            server.close();
            LOG.log(System.Logger.Level.INFO, "rank " + rank + "/" + world + " joined the ring at " + self
                    + ": sends to rank " + rightRank + " (" + addresses.get(rightRank) + "), receives from rank "
                    + leftRank + " (" + addresses.get(leftRank) + ")");
            return new RingAllReduce(config, addresses, r, left, sender, refusedCount[0]);
        } catch (IOException e) {
            cleanUp(server, sender, left, right);
            throw new AllReduceException("rank " + rank + ": setup failed (listening on " + config.bindHost() + "): " + e,
                    -1, null, e);
        } catch (RuntimeException e) {
            cleanUp(server, sender, left, right);
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
        if (op == null) {
            throw new IllegalArgumentException("RingAllReduce.submit: op is null");
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
                    execute(op, buf, off, len, schedule);
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

    private void execute(Op op, float[] buf, int off, int len, RingSchedule schedule) {
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
        Call call = new Call(op, buf, off, len, ++seq, schedule, first, end);
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
                txFloats.clear();
                txFloats.put(call.buf, call.off + at, count);
                tx.limit(HEADER_BYTES + count * Float.BYTES).position(0);
                toRight.writeFully(tx, ioNanos, frameName(call, step, at, count));
                framingSent.addAndGet(HEADER_BYTES);
                payloadSent.addAndGet((long) count * Float.BYTES);
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
                rx.limit(HEADER_BYTES + count * Float.BYTES);
                fromLeft.readFully(rx, ioNanos, "the payload of " + what);
                rxFloats.clear().limit(count);
                int dst = call.off + at;
                if (reduce) {
                    rxFloats.get(scratch, 0, count);
                    float[] b = call.buf;
                    for (int i = 0; i < count; i++) {
                        b[dst + i] += scratch[i];
                    }
                } else {
                    rxFloats.get(call.buf, dst, count);
                }
                framingReceived.addAndGet(HEADER_BYTES);
                payloadReceived.addAndGet((long) count * Float.BYTES);
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

        Call(Op op, float[] buf, int off, int len, int seq, RingSchedule schedule, int firstStep, int endStep) {
            this.op = op;
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

    // ---------------------------------------------------------------- setup

    private static PeerLink connectRight(RingConfig config, int rightRank, String address, long deadline) throws IOException {
        InetSocketAddress target = parse(address, "rank " + rightRank);
        int rank = config.rank();
        IOException last = null;
        while (true) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new AllReduceException("rank " + rank + ": could not connect to rank " + rightRank + " (" + address
                        + ") within " + config.setupTimeout().toMillis() + " ms" + (last == null ? "" : ": " + last),
                        rightRank, address, last);
            }
            PeerLink link;
            try {
                link = PeerLink.connect(target, rank, rightRank, address, left);
            } catch (ConnectException e) {
                last = e;
                sleepQuietly(Math.min(50, TimeUnit.NANOSECONDS.toMillis(left) + 1));
                continue;
            }
            try {
                Handshake.connect(link, config.secret(), config.worldSize(), rank,
                        Math.min(config.ioTimeout().toNanos(), Math.max(1, deadline - System.nanoTime())));
                return link;
            } catch (RuntimeException e) {
                link.close();
                throw e;
            }
        }
    }

    /**
     * Accepts connections until one proves the secret as rank {@code leftRank}. Each connection's
     * handshake runs on its own thread, so a connection that stalls cannot hold up the real neighbour;
     * at most {@link #MAX_PENDING_HANDSHAKES} run at once, further connections are refused outright.
     */
    private static PeerLink acceptLeft(ServerSocketChannel server, RingConfig config, int leftRank, String address,
                                       long deadline, long[] refusedCount, Future<PeerLink> right) throws IOException {
        int rank = config.rank();
        server.configureBlocking(false);
        CompletableFuture<PeerLink> winner = new CompletableFuture<>();
        Set<PeerLink> pending = ConcurrentHashMap.newKeySet();
        AtomicLong refused = new AtomicLong();
        ExecutorService handshakes = Executors.newCachedThreadPool(daemon("ring-allreduce-r" + rank + "-handshake"));
        boolean handedOver = false;
        try (Selector selector = Selector.open()) {
            server.register(selector, SelectionKey.OP_ACCEPT);
            while (true) {
                if (winner.isDone()) {
                    handedOver = true;
                    return winner.join();
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new AllReduceException("rank " + rank + ": no authenticated connection from rank " + leftRank
                            + " (" + address + ") within " + config.setupTimeout().toMillis() + " ms (refused "
                            + refused.get() + " connection(s))", leftRank, address);
                }
                selector.select(Math.max(1, Math.min(100, TimeUnit.NANOSECONDS.toMillis(left))));
                selector.selectedKeys().clear();
                if (right.isDone()) {
                    failFastIfConnectFailed(right);
                }
                SocketChannel ch;
                while (!winner.isDone() && (ch = server.accept()) != null) {
                    String remote = String.valueOf(ch.getRemoteAddress());
                    if (pending.size() >= MAX_PENDING_HANDSHAKES) {
                        refuse(rank, leftRank, address, remote, "more than " + MAX_PENDING_HANDSHAKES
                                + " handshakes pending", refused);
                        ch.close();
                        continue;
                    }
                    ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
                    PeerLink link = new PeerLink(ch, rank, leftRank, address);
                    pending.add(link);
                    handshakes.execute(() -> {
                        String refusal = Handshake.accept(link, config.secret(), config.worldSize(), rank, leftRank,
                                Math.min(config.ioTimeout().toNanos(), Math.max(1, deadline - System.nanoTime())));
                        pending.remove(link);
                        if (refusal == null && winner.complete(link)) {
                            selector.wakeup();
                            return;
                        }
                        refuse(rank, leftRank, address, remote,
                                refusal != null ? refusal : "rank " + leftRank + " is already connected", refused);
                        link.close();
                    });
                }
            }
        } finally {
            // Handshakes still running lose: close them, let their threads log the refusal, then count.
            pending.forEach(PeerLink::close);
            handshakes.shutdown();
            try {
                handshakes.awaitTermination(1, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (!handedOver && winner.isDone()) {
                winner.join().close();
            }
            refusedCount[0] = refused.get();
        }
    }

    private static void refuse(int rank, int leftRank, String address, String remote, String why, AtomicLong refused) {
        refused.incrementAndGet();
        LOG.log(System.Logger.Level.WARNING, "rank " + rank + ": refused connection from " + remote
                + " (expected rank " + leftRank + " at " + address + "): " + why);
    }

    /** The connection to the right neighbour failed for good: no point waiting for the left one. */
    private static void failFastIfConnectFailed(Future<PeerLink> right) {
        try {
            right.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof AllReduceException a) {
                throw a;
            }
            throw new AllReduceException("could not connect to the right neighbour: " + e.getCause(), -1, null, e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AllReduceException("interrupted while joining the ring", -1, null, e);
        }
    }

    private static PeerLink awaitRight(Future<PeerLink> right, long deadline, RingConfig config, int rightRank,
                                       String address) {
        try {
            return right.get(Math.max(1, deadline - System.nanoTime()) + TimeUnit.SECONDS.toNanos(1), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof AllReduceException a) {
                throw a;
            }
            throw new AllReduceException("rank " + config.rank() + ": could not connect to rank " + rightRank + " ("
                    + address + "): " + c, rightRank, address, c);
        } catch (TimeoutException e) {
            throw new AllReduceException("rank " + config.rank() + ": connecting to rank " + rightRank + " (" + address
                    + ") did not finish within " + config.setupTimeout().toMillis() + " ms", rightRank, address, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AllReduceException("rank " + config.rank() + ": interrupted while connecting to rank " + rightRank,
                    rightRank, address, e);
        }
    }

    private static List<String> validateAddresses(List<String> all, String self, RingConfig config) {
        int world = config.worldSize();
        if (all == null || all.size() != world) {
            throw new AllReduceException("rank " + config.rank() + ": the address exchange returned "
                    + (all == null ? "nothing" : all.size() + " addresses") + ", expected " + world + " (one per rank)",
                    -1, null);
        }
        if (!self.equals(all.get(config.rank()))) {
            throw new AllReduceException("rank " + config.rank() + ": the address exchange put '" + all.get(config.rank())
                    + "' at this rank's position, expected '" + self + "'", -1, null);
        }
        List<String> out = new ArrayList<>(all);
        for (int i = 0; i < world; i++) {
            parse(out.get(i), "rank " + i);
        }
        return out;
    }

    /** Parses {@code host:port} or {@code [v6]:port}. */
    static InetSocketAddress parse(String hostPort, String whose) {
        int colon = hostPort == null ? -1 : hostPort.lastIndexOf(':');
        if (colon <= 0 || colon == hostPort.length() - 1) {
            throw new AllReduceException("address of " + whose + ": expected host:port, got '" + hostPort + "'", -1, hostPort);
        }
        String host = hostPort.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(hostPort.substring(colon + 1));
        } catch (NumberFormatException e) {
            port = -1;
        }
        if (port < 1 || port > 65535) {
            throw new AllReduceException("address of " + whose + ": port out of range in '" + hostPort + "'", -1, hostPort);
        }
        return new InetSocketAddress(host, port);
    }

    static String hostPort(String host, int port) {
        return (host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host) + ":" + port;
    }

    /** A fresh 32-byte random secret for one run. */
    public static byte[] newSecret() {
        return Handshake.newSecret();
    }

    private static void cleanUp(ServerSocketChannel server, ExecutorService sender, PeerLink left, Future<PeerLink> right) {
        if (server != null) {
            try {
                server.close();
            } catch (IOException ignored) {
                // already failing; the original error is reported
            }
        }
        if (left != null) {
            left.close();
        }
        if (right != null) {
            right.cancel(true);
            if (right.isDone() && !right.isCancelled()) {
                try {
                    right.get().close();
                } catch (ExecutionException | InterruptedException | RuntimeException ignored) {
                    // the connection attempt failed: nothing to close
                }
            }
        }
        if (sender != null) {
            sender.shutdownNow();
        }
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

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }

    private static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AllReduceException("interrupted while connecting", -1, null, e);
        }
    }
}
