package io.ouro.worker.comm;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * Several rings over the same W ranks: {@code connections} TCP connections to each neighbour, each with its own
 * sender and receiver threads, so that more than one stream carries the exchange (one stream rarely fills a fast
 * link, and one core's copying caps it). Call {@code i} of a step goes to ring {@code i mod connections}: calls on
 * different rings run at once, calls on one ring in submission order. Every rank must make the same calls in the
 * same order, as with one ring.
 */
public final class RingGroup implements AutoCloseable {

    private final List<RingAllReduce> rings;

    private RingGroup(List<RingAllReduce> rings) {
        this.rings = List.copyOf(rings);
    }

    /** One ring per connection, set up one after the other (each with its own address exchange). */
    public static RingGroup open(RingConfig config, int connections, Function<String, List<String>> allGather) {
        if (connections < 1) {
            throw new IllegalArgumentException("RingGroup: connections per neighbour must be >= 1, got " + connections);
        }
        List<RingAllReduce> rings = new ArrayList<>();
        try {
            for (int i = 0; i < connections; i++) {
                rings.add(RingAllReduce.open(config, allGather));
            }
        } catch (RuntimeException e) {
            for (RingAllReduce r : rings) {
                r.close();
            }
            throw e;
        }
        return new RingGroup(rings);
    }

    /** A group over rings already open (tests). */
    public static RingGroup of(List<RingAllReduce> rings) {
        if (rings.isEmpty()) {
            throw new IllegalArgumentException("RingGroup: no rings");
        }
        return new RingGroup(rings);
    }

    public int connections() {
        return rings.size();
    }

    public RingAllReduce ring(int i) {
        return rings.get(i);
    }

    public int rank() {
        return rings.get(0).rank();
    }

    public int worldSize() {
        return rings.get(0).worldSize();
    }

    /** Queues call number {@code call} of a step on its ring; see {@link RingAllReduce#submit(RingAllReduce.Op, float[], int, int, int[][])}. */
    public CompletableFuture<Void> submit(int call, RingAllReduce.Op op, float[] buf, int off, int len, int[][] owned) {
        return rings.get(Math.floorMod(call, rings.size())).submit(op, buf, off, len, owned);
    }

    /** As {@link #submit(int, RingAllReduce.Op, float[], int, int, int[][])}, with the values on the wire in {@code wire}. */
    public CompletableFuture<Void> submit(int call, RingAllReduce.Op op, WireDtype wire, float[] buf, int off, int len,
                                          int[][] owned) {
        return rings.get(Math.floorMod(call, rings.size())).submit(op, wire, buf, off, len, owned);
    }

    /** The dtype gradients may travel in, agreed by every rank at setup ({@link RingConfig#gradientDtype()}). */
    public WireDtype gradientDtype() {
        return rings.get(0).gradientDtype();
    }

    /** Sums {@code buf[off, off+len)} over all ranks on the first ring, after the calls queued there. */
    public void allReduceSum(float[] buf, int off, int len) {
        rings.get(0).allReduceSum(buf, off, len);
    }

    /** The counters of every ring added up (commNanos: the sum of the calls' times, which may overlap). */
    public CommStats stats() {
        long[] a = new long[9];
        for (RingAllReduce r : rings) {
            CommStats s = r.stats();
            long[] v = {s.payloadBytesSent(), s.framingBytesSent(), s.payloadBytesReceived(), s.framingBytesReceived(),
                    s.handshakeBytesSent(), s.handshakeBytesReceived(), s.refusedConnections(), s.calls(), s.commNanos()};
            for (int i = 0; i < a.length; i++) {
                a[i] += v[i];
            }
        }
        return new CommStats(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
    }

    @Override
    public void close() {
        for (RingAllReduce r : rings) {
            r.close();
        }
    }
}
