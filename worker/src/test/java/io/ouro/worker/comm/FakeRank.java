package io.ouro.worker.comm;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.List;

/**
 * A ring member driven by a test: it joins with the real handshake, then sends only what the test
 * tells it to (nothing, half a frame, ...) so that hung and dying peers can be staged exactly.
 */
final class FakeRank implements AutoCloseable {

    final int rank;
    final int world;
    private final byte[] secret;
    private final ServerSocketChannel server;
    final String address;
    PeerLink toRight;
    PeerLink fromLeft;

    FakeRank(int rank, int world, byte[] secret) throws IOException {
        this.rank = rank;
        this.world = world;
        this.secret = secret;
        this.server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress(LocalRing.LOOPBACK, 0));
        this.address = LocalRing.LOOPBACK + ":" + ((InetSocketAddress) server.getLocalAddress()).getPort();
    }

    /** Connects to rank+1 and accepts rank-1 with the real handshake. */
    void join(List<String> addresses, Duration timeout) throws IOException {
        int right = (rank + 1) % world;
        int left = (rank - 1 + world) % world;
        long t = timeout.toNanos();
        toRight = PeerLink.connect(RingSetup.parse(addresses.get(right), "right"), rank, right, addresses.get(right), t);
        Handshake.connect(toRight, secret, world, rank, WireDtype.FP32, t);
        server.socket().setSoTimeout((int) timeout.toMillis());
        SocketChannel ch = server.socket().accept().getChannel();
        fromLeft = new PeerLink(ch, rank, left, addresses.get(left));
        String refusal = Handshake.accept(fromLeft, secret, world, rank, left, WireDtype.FP32, t);
        if (refusal != null) {
            throw new IllegalStateException("fake rank " + rank + " refused its left neighbour: " + refusal);
        }
        server.close();
    }

    /** Sends the header of the first frame this rank owes for a call on {@code len} floats, then {@code floats} of its payload. */
    void sendFirstFramePartly(int len, int chunkBytes, int floats) {
        RingSchedule s = new RingSchedule(world, rank, len, chunkBytes / 4);
        int seg = s.sendSegment(0);
        int count = Math.min(chunkBytes / 4, s.segmentLength(seg));
        ByteBuffer b = ByteBuffer.allocate(RingAllReduce.HEADER_BYTES + floats * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(1).putInt(0).putInt(s.segmentStart(seg)).putInt(count);
        for (int i = 0; i < floats; i++) {
            b.putFloat(1f);
        }
        b.flip();
        toRight.writeFully(b, Duration.ofSeconds(10).toNanos(), "a partial frame");
    }

    @Override
    public void close() throws IOException {
        server.close();
        if (toRight != null) {
            toRight.close();
        }
        if (fromLeft != null) {
            fromLeft.close();
        }
    }
}
