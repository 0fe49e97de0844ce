package io.ouro.worker.comm;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Setting up the ring of {@link RingAllReduce#open}: the addresses checked, the connection to the right neighbour
 * and the authenticated one from the left (refusing strangers), and the clean-up when setup fails.
 */
final class RingSetup {

    // the log of the ring: its warnings read as RingAllReduce's, as before the split
    private static final System.Logger LOG = System.getLogger(RingAllReduce.class.getName());

    /**
     * Test hook: lets a test hold a rank at a fixed point of setup instead of racing it. Null in production,
     * where setup runs exactly as without it.
     */
    interface Hook {
        /**
         * On the handshake thread, once a connection from the left is settled (won, or refused and closed);
         * {@code refusal} is the handshake's, null where the peer proved the secret.
         */
        void leftHandshakeDone(int rank, String refusal);

        /**
         * On the connecting thread, when the handshake with the right neighbour failed: before the link is
         * closed and the failure reaches {@link #acceptLeft}, which then gives up.
         */
        void rightHandshakeFailed(int rank, RuntimeException failure);
    }

    static volatile Hook hook;

    private RingSetup() {
    }

    static PeerLink connectRight(RingConfig config, int rightRank, String address, long deadline) throws IOException {
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
                RingAllReduce.sleepQuietly(Math.min(50, TimeUnit.NANOSECONDS.toMillis(left) + 1));
                continue;
            }
            try {
                Handshake.connect(link, config.secret(), config.worldSize(), rank, config.gradientDtype(),
                        Math.min(config.ioTimeout().toNanos(), Math.max(1, deadline - System.nanoTime())));
                return link;
            } catch (RuntimeException e) {
                Hook h = hook;
                if (h != null) {
                    h.rightHandshakeFailed(rank, e);
                }
                link.close();
                throw e;
            }
        }
    }

    /**
     * Accepts connections until one proves the secret as rank {@code leftRank}. Each connection's
     * handshake runs on its own thread, so a connection that stalls cannot hold up the real neighbour;
     * at most {@link #RingAllReduce.MAX_PENDING_HANDSHAKES} run at once, further connections are refused outright.
     */
    static PeerLink acceptLeft(ServerSocketChannel server, RingConfig config, int leftRank, String address,
                                       long deadline, long[] refusedCount, Future<PeerLink> right) throws IOException {
        int rank = config.rank();
        server.configureBlocking(false);
        CompletableFuture<PeerLink> winner = new CompletableFuture<>();
        Set<PeerLink> pending = ConcurrentHashMap.newKeySet();
        AtomicLong refused = new AtomicLong();
        ExecutorService handshakes = Executors.newCachedThreadPool(RingAllReduce.daemon("ring-allreduce-r" + rank + "-handshake"));
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
                    if (pending.size() >= RingAllReduce.MAX_PENDING_HANDSHAKES) {
                        refuse(rank, leftRank, address, remote, "more than " + RingAllReduce.MAX_PENDING_HANDSHAKES
                                + " handshakes pending", refused);
                        ch.close();
                        continue;
                    }
                    ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
                    PeerLink link = new PeerLink(ch, rank, leftRank, address);
                    pending.add(link);
                    handshakes.execute(() -> {
                        String refusal = Handshake.accept(link, config.secret(), config.worldSize(), rank, leftRank, config.gradientDtype(),
                                Math.min(config.ioTimeout().toNanos(), Math.max(1, deadline - System.nanoTime())));
                        pending.remove(link);
                        if (refusal == null && winner.complete(link)) {
                            selector.wakeup();
                        } else {
                            refuse(rank, leftRank, address, remote,
                                    refusal != null ? refusal : "rank " + leftRank + " is already connected", refused);
                            link.close();
                        }
                        Hook h = hook;
                        if (h != null) {
                            h.leftHandshakeDone(rank, refusal);
                        }
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

    static void refuse(int rank, int leftRank, String address, String remote, String why, AtomicLong refused) {
        refused.incrementAndGet();
        LOG.log(System.Logger.Level.WARNING, "rank " + rank + ": refused connection from " + remote
                + " (expected rank " + leftRank + " at " + address + "): " + why);
    }

    /** The connection to the right neighbour failed for good: no point waiting for the left one. */
    static void failFastIfConnectFailed(Future<PeerLink> right) {
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

    static PeerLink awaitRight(Future<PeerLink> right, long deadline, RingConfig config, int rightRank,
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

    static List<String> validateAddresses(List<String> all, String self, RingConfig config) {
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


    static void cleanUp(ServerSocketChannel server, ExecutorService sender, PeerLink left, Future<PeerLink> right) {
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
}
