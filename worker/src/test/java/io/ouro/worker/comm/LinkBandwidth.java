package io.ouro.worker.comm;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Point-to-point bandwidth on 127.0.0.1 with the ring's own data path: frames of a 16-byte header
 * and {@code chunkBytes} of little-endian floats, copied from a float[] into a direct buffer, written
 * and read through {@link PeerLink}, copied into a float[] on the other side. {@code links} sender →
 * receiver pairs run at once, so the per-link figure includes the CPU contention of that many streams.
 */
public final class LinkBandwidth implements AutoCloseable {

    private static final long TIMEOUT = Duration.ofSeconds(60).toNanos();

    private final int links;
    private final int chunk;
    private final float[] src;
    private final float[][] dst;
    private final List<PeerLink> senders = new ArrayList<>();
    private final List<PeerLink> receivers = new ArrayList<>();
    private final ExecutorService pool;

    /** Opens {@code links} loopback connections that will each carry {@code floats} floats per transfer. */
    public LinkBandwidth(int links, int floats, int chunkBytes) throws IOException {
        this.links = links;
        this.chunk = chunkBytes / 4;
        this.src = new float[floats];
        for (int i = 0; i < floats; i++) {
            src[i] = i;
        }
        this.dst = new float[links][floats];
        this.pool = Executors.newFixedThreadPool(2 * links);
        try {
            for (int l = 0; l < links; l++) {
                try (ServerSocketChannel server = ServerSocketChannel.open()) {
                    server.bind(new InetSocketAddress(LocalRing.LOOPBACK, 0));
                    InetSocketAddress addr = (InetSocketAddress) server.getLocalAddress();
                    senders.add(PeerLink.connect(addr, 0, 1, addr.toString(), TIMEOUT));
                    SocketChannel ch = server.accept();
                    receivers.add(new PeerLink(ch, 1, 0, "sender " + l));
                }
            }
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Seconds from the first sender's start to the last receiver's end of one transfer on every link at once. */
    public double transferSeconds() throws Exception {
        CyclicBarrier start = new CyclicBarrier(2 * links);
        List<Future<long[]>> fs = new ArrayList<>();
        for (int l = 0; l < links; l++) {
            PeerLink out = senders.get(l);
            PeerLink in = receivers.get(l);
            float[] d = dst[l];
            Arrays.fill(d, 0, Math.min(4, d.length), -1f);
            d[d.length - 1] = -1f;
            fs.add(pool.submit(() -> {
                start.await(60, TimeUnit.SECONDS);
                long t0 = System.nanoTime();
                send(out, src, chunk);
                return new long[] {t0, System.nanoTime()};
            }));
            fs.add(pool.submit(() -> {
                start.await(60, TimeUnit.SECONDS);
                long t0 = System.nanoTime();
                receive(in, d, chunk);
                return new long[] {t0, System.nanoTime()};
            }));
        }
        long first = Long.MAX_VALUE;
        long last = Long.MIN_VALUE;
        for (Future<long[]> f : fs) {
            long[] t = f.get(120, TimeUnit.SECONDS);
            first = Math.min(first, t[0]);
            last = Math.max(last, t[1]);
        }
        for (float[] d : dst) {
            if (d[d.length - 1] != d.length - 1 || d[0] != 0f) {
                throw new IllegalStateException("link transfer corrupted the data");
            }
        }
        return (last - first) / 1e9;
    }

    @Override
    public void close() {
        pool.shutdownNow();
        senders.forEach(PeerLink::close);
        receivers.forEach(PeerLink::close);
    }

    private static void send(PeerLink out, float[] src, int chunk) {
        ByteBuffer tx = ByteBuffer.allocateDirect(RingAllReduce.HEADER_BYTES + chunk * 4).order(ByteOrder.LITTLE_ENDIAN);
        FloatBuffer txFloats = tx.duplicate().position(RingAllReduce.HEADER_BYTES).slice()
                .order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        for (int at = 0; at < src.length; at += chunk) {
            int count = Math.min(chunk, src.length - at);
            tx.clear();
            tx.putInt(1).putInt(0).putInt(at).putInt(count);
            txFloats.clear();
            txFloats.put(src, at, count);
            tx.limit(RingAllReduce.HEADER_BYTES + count * 4).position(0);
            out.writeFully(tx, TIMEOUT, "a frame");
        }
    }

    private static void receive(PeerLink in, float[] dst, int chunk) {
        ByteBuffer rx = ByteBuffer.allocateDirect(RingAllReduce.HEADER_BYTES + chunk * 4).order(ByteOrder.LITTLE_ENDIAN);
        FloatBuffer rxFloats = rx.duplicate().position(RingAllReduce.HEADER_BYTES).slice()
                .order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        for (int at = 0; at < dst.length; at += chunk) {
            int count = Math.min(chunk, dst.length - at);
            rx.clear().limit(RingAllReduce.HEADER_BYTES);
            in.readFully(rx, TIMEOUT, "a frame header");
            if (rx.getInt(8) != at || rx.getInt(12) != count) {
                throw new IllegalStateException("unexpected frame at " + at);
            }
            rx.limit(RingAllReduce.HEADER_BYTES + count * 4);
            in.readFully(rx, TIMEOUT, "a frame payload");
            rxFloats.clear().limit(count);
            rxFloats.get(dst, at, count);
        }
    }
}
