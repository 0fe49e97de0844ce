package io.ouro.worker.comm;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.CancelledKeyException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;

/**
 * One TCP connection to a ring neighbour with bounded waits. The channel is non-blocking; a read or
 * write that cannot progress waits on the link's own selector for at most the given timeout, so a hung
 * peer becomes an {@link AllReduceException} naming the peer and what was awaited. One thread uses a
 * link at a time; {@link #abort} may be called from any thread and wakes the waiting one.
 */
final class PeerLink implements AutoCloseable {

    private final SocketChannel channel;
    private final Selector selector;
    private final SelectionKey key;
    private final int selfRank;
    final int peerRank;
    final String peerAddress;
    private volatile String abortReason;

    PeerLink(SocketChannel channel, int selfRank, int peerRank, String peerAddress) throws IOException {
        this.channel = channel;
        this.selfRank = selfRank;
        this.peerRank = peerRank;
        this.peerAddress = peerAddress;
        channel.configureBlocking(false);
        this.selector = Selector.open();
        try {
            this.key = channel.register(selector, 0);
        } catch (IOException | RuntimeException e) {
            selector.close();
            throw e;
        }
    }

    /**
     * Opens a TCP connection to {@code target}, waiting at most {@code timeoutNanos}. A refused
     * connection surfaces as {@link java.net.ConnectException} so the caller may retry.
     */
    static PeerLink connect(InetSocketAddress target, int selfRank, int peerRank, String peerAddress,
                            long timeoutNanos) throws IOException {
        SocketChannel ch = SocketChannel.open();
        try {
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            PeerLink link = new PeerLink(ch, selfRank, peerRank, peerAddress);
            try {
                if (!ch.connect(target)) {
                    link.await(SelectionKey.OP_CONNECT, timeoutNanos, "the TCP connection");
                    if (!ch.finishConnect()) {
                        throw new IOException("connection to " + target + " not established");
                    }
                }
                return link;
            } catch (IOException | RuntimeException e) {
                link.close();
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** Writes all of {@code buf}; each stall waits at most {@code timeoutNanos} for the peer to drain. */
    void writeFully(ByteBuffer buf, long timeoutNanos, String what) {
        try {
            while (buf.hasRemaining()) {
                if (channel.write(buf) == 0) {
                    await(SelectionKey.OP_WRITE, timeoutNanos, what);
                }
            }
        } catch (IOException e) {
            throw failure("failed sending " + what + " to", e);
        }
    }

    /** Fills {@code buf}; each stall waits at most {@code timeoutNanos} for the peer's next byte. */
    void readFully(ByteBuffer buf, long timeoutNanos, String what) {
        try {
            while (buf.hasRemaining()) {
                int n = channel.read(buf);
                if (n < 0) {
                    throw new AllReduceException("rank " + selfRank + ": rank " + peerRank + " (" + peerAddress
                            + ") closed the connection while rank " + selfRank + " awaited " + what, peerRank, peerAddress);
                }
                if (n == 0) {
                    await(SelectionKey.OP_READ, timeoutNanos, what);
                }
            }
        } catch (IOException e) {
            throw failure("failed receiving " + what + " from", e);
        }
    }

    private void await(int op, long timeoutNanos, String what) throws IOException {
        long deadline = System.nanoTime() + timeoutNanos;
        key.interestOps(op);
        try {
            while (true) {
                checkAbort(what);
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new AllReduceException("rank " + selfRank + ": timed out after "
                            + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms waiting for rank " + peerRank + " ("
                            + peerAddress + ") " + (op == SelectionKey.OP_READ ? "to send " : op == SelectionKey.OP_WRITE ? "to read " : "to accept ") + what,
                            peerRank, peerAddress);
                }
                int ready = selector.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                selector.selectedKeys().clear();
                if (Thread.interrupted()) {
                    Thread.currentThread().interrupt();
                    throw new AllReduceException("rank " + selfRank + ": interrupted while awaiting " + what
                            + " with rank " + peerRank + " (" + peerAddress + ")", peerRank, peerAddress);
                }
                if (ready > 0) {
                    checkAbort(what);
                    return;
                }
            }
        } catch (ClosedSelectorException | CancelledKeyException e) {
            checkAbort(what);
            throw new ClosedChannelException();
        } finally {
            try {
                key.interestOps(0);
            } catch (CancelledKeyException ignored) {
                // the link is being closed; the caller fails on its next step
            }
        }
    }

    private void checkAbort(String what) {
        String reason = abortReason;
        if (reason != null) {
            throw new AllReduceException("rank " + selfRank + ": stopped awaiting " + what + " with rank " + peerRank
                    + " (" + peerAddress + "): " + reason, peerRank, peerAddress);
        }
    }

    private AllReduceException failure(String verb, IOException e) {
        String reason = abortReason;
        String suffix = reason == null ? ": " + e : " (" + reason + ")";
        return new AllReduceException("rank " + selfRank + ": " + verb + " rank " + peerRank + " (" + peerAddress + ")"
                + suffix, peerRank, peerAddress, e);
    }

    /** Makes the current and every later wait on this link fail with {@code reason}. */
    void abort(String reason) {
        if (abortReason == null) {
            abortReason = reason;
        }
        selector.wakeup();
    }

    @Override
    public void close() {
        abort("the link was closed");
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing a socket whose peer is gone: nothing left to release
        }
        try {
            selector.close();
        } catch (IOException ignored) {
            // as above
        }
    }
}
