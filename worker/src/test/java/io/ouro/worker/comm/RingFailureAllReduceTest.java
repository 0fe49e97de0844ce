package io.ouro.worker.comm;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hung, dead and out-of-step peers end in an AllReduceException naming the peer, never in a deadlock. */
class RingFailureAllReduceTest {

    private static final Duration SHORT_IO = Duration.ofSeconds(1);
    private static final Duration LONG_IO = Duration.ofSeconds(60);
    /** Deadlock guard: far above the configured timeouts, far below a hang. */
    private static final Duration GUARD = Duration.ofSeconds(30);

    @Test
    void peerThatJoinedButNeverSendsTimesOutNamingIt() {
        assertTimeoutPreemptively(GUARD, () -> {
            List<RingAllReduce> ranks = LocalRing.open(3, 4096, Duration.ofSeconds(10), SHORT_IO);
            try {
                // rank 2 is connected and authenticated but never calls: ranks 0 and 1 must not wait forever
                List<Throwable> errors = LocalRing.failures(2, r -> () -> ranks.get(r).allReduceSum(new float[1000], 0, 1000));
                AllReduceException e0 = assertInstanceOf(AllReduceException.class, errors.get(0));
                assertEquals(2, e0.peerRank(), e0.getMessage());
                assertEquals(ranks.get(2).addresses().get(2), e0.peerAddress());
                // which wait times out first (the peer's data, or the chunk rank 0 must forward) depends on timing
                assertTrue(e0.getMessage().contains("timed out after 1000 ms waiting for")
                        && e0.getMessage().contains("rank 2 (" + ranks.get(2).addresses().get(2)), e0.getMessage());
                assertInstanceOf(AllReduceException.class, errors.get(1));
                AllReduceException again = assertThrows(AllReduceException.class, () -> ranks.get(0).allReduceSum(new float[4], 0, 4));
                assertTrue(again.getMessage().contains("unusable after an earlier failure"), again.getMessage());
            } finally {
                LocalRing.closeAll(ranks);
            }
        });
    }

    @Test
    void peerDyingMidFrameFailsItsNeighboursWithoutWaitingForTheTimeout() {
        assertTimeoutPreemptively(GUARD, () -> {
            int world = 3;
            int len = 100_000;
            int chunk = 4096;
            byte[] secret = RingAllReduce.newSecret();
            List<Function<String, List<String>>> gathers = LocalRing.allGather(world, Duration.ofSeconds(10));
            try (FakeRank fake = new FakeRank(2, world, secret)) {
                List<Object> joined = LocalRing.parallel(world, r -> {
                    if (r == 2) {
                        try {
                            fake.join(gathers.get(2).apply(fake.address), Duration.ofSeconds(10));
                        } catch (IOException e) {
                            throw new IllegalStateException(e);
                        }
                        return fake;
                    }
                    return RingAllReduce.open(RingConfig.of(r, world, LocalRing.LOOPBACK, secret)
                            .withTimeouts(Duration.ofSeconds(10), LONG_IO).withChunkBytes(chunk), gathers.get(r));
                });
                List<RingAllReduce> real = List.of((RingAllReduce) joined.get(0), (RingAllReduce) joined.get(1));
                try {
                    List<Throwable> errors = LocalRing.failures(3, r -> () -> {
                        if (r == 2) {
                            // half a payload, then the process dies
                            fake.sendFirstFramePartly(len, chunk, 100);
                            try {
                                fake.close();
                            } catch (IOException e) {
                                throw new IllegalStateException(e);
                            }
                        } else {
                            real.get(r).allReduceSum(new float[len], 0, len);
                        }
                    });
                    // Whichever of ranks 0 and 1 fails first, it fails because of rank 2 (rank 0 reading
                    // the cut frame, or rank 1 writing to the closed socket); the other follows.
                    AllReduceException e0 = assertInstanceOf(AllReduceException.class, errors.get(0));
                    AllReduceException e1 = assertInstanceOf(AllReduceException.class, errors.get(1));
                    assertTrue(e0.peerRank() == 2 || e1.peerRank() == 2, e0.getMessage() + " / " + e1.getMessage());
                    if (e0.peerRank() == 2) {
                        assertTrue(e0.getMessage().contains("closed the connection while rank 0 awaited the payload of frame"),
                                e0.getMessage());
                    }
                } finally {
                    LocalRing.closeAll(real);
                }
            }
        });
    }

    @Test
    void peerClosingBeforeTheCallFailsTheOthers() {
        assertTimeoutPreemptively(GUARD, () -> {
            List<RingAllReduce> ranks = LocalRing.open(3, 4096, Duration.ofSeconds(10), LONG_IO);
            try {
                ranks.get(2).close();
                List<Throwable> errors = LocalRing.failures(2, r -> () -> ranks.get(r).allReduceSum(new float[50_000], 0, 50_000));
                // Whichever rank notices first fails because of rank 2 (rank 1 writing to it, or rank 0
                // reading from it); the other may see only that first rank close its link (CI saw rank 0
                // fail on a broken pipe to rank 1 after rank 1 had given up on rank 2).
                AllReduceException e0 = assertInstanceOf(AllReduceException.class, errors.get(0));
                AllReduceException e1 = assertInstanceOf(AllReduceException.class, errors.get(1));
                assertTrue(e0.peerRank() == 2 || e1.peerRank() == 2, e0.getMessage() + " / " + e1.getMessage());
                AllReduceException closed = assertThrows(AllReduceException.class, () -> ranks.get(2).allReduceSum(new float[4], 0, 4));
                assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
            } finally {
                LocalRing.closeAll(ranks);
            }
        });
    }

    @Test
    void ranksCallingWithDifferentLengthsFailNamingTheFrame() {
        assertTimeoutPreemptively(GUARD, () -> {
            List<RingAllReduce> ranks = LocalRing.open(2, 4096, Duration.ofSeconds(10), SHORT_IO);
            try {
                List<Throwable> errors = LocalRing.failures(2, r -> () -> {
                    int len = r == 0 ? 10 : 12;
                    ranks.get(r).allReduceSum(new float[len], 0, len);
                });
                // the rank that sees the mismatch first says so and closes; the other may only see the link
                // close, and still names the frame it was waiting for
                String all = "";
                for (int r = 0; r < 2; r++) {
                    AllReduceException e = assertInstanceOf(AllReduceException.class, errors.get(r));
                    assertTrue(e.getMessage().contains("do all ranks submit the same lengths")
                            || e.getMessage().contains("frame [call #1"), e.getMessage());
                    all += e.getMessage() + " | ";
                }
                assertTrue(all.contains("do all ranks submit the same lengths"), all);
            } finally {
                LocalRing.closeAll(ranks);
            }
        });
    }

    @Test
    void setupFailsWhenTheRightNeighbourNeverAnswersTheHandshake() throws IOException {
        // a "rank 1" that accepts TCP connections but never speaks, and connects to rank 0 saying nothing
        try (ServerSocket silent = new ServerSocket()) {
            silent.bind(new InetSocketAddress(LocalRing.LOOPBACK, 0));
            String silentAddr = LocalRing.LOOPBACK + ":" + silent.getLocalPort();
            List<Socket> held = new ArrayList<>();
            try {
                RingConfig cfg = RingConfig.of(0, 2, LocalRing.LOOPBACK, RingAllReduce.newSecret())
                        .withTimeouts(Duration.ofSeconds(3), SHORT_IO);
                AllReduceException e = assertTimeoutPreemptively(GUARD, () -> assertThrows(AllReduceException.class,
                        () -> RingAllReduce.open(cfg, self -> {
                            held.add(connect(self));
                            return List.of(self, silentAddr);
                        })));
                assertEquals(1, e.peerRank(), e.getMessage());
                assertTrue(e.getMessage().contains("handshake CHALLENGE"), e.getMessage());
            } finally {
                for (Socket s : held) {
                    s.close();
                }
            }
        }
    }

    @Test
    void setupFailsWhenNobodyListensAtTheRightNeighboursAddress() throws IOException {
        int port;
        try (ServerSocket gone = new ServerSocket()) {
            gone.bind(new InetSocketAddress(LocalRing.LOOPBACK, 0));
            port = gone.getLocalPort();
        }
        String goneAddr = LocalRing.LOOPBACK + ":" + port;
        RingConfig cfg = RingConfig.of(0, 2, LocalRing.LOOPBACK, RingAllReduce.newSecret())
                .withTimeouts(Duration.ofSeconds(2), SHORT_IO);
        AllReduceException e = assertTimeoutPreemptively(GUARD, () -> assertThrows(AllReduceException.class,
                () -> RingAllReduce.open(cfg, self -> List.of(self, goneAddr))));
        assertEquals(1, e.peerRank(), e.getMessage());
        assertTrue(e.getMessage().contains("could not connect to rank 1 (" + goneAddr + ") within 2000 ms"), e.getMessage());
    }

    @Test
    void badAddressExchangeIsRejected() {
        RingConfig cfg = RingConfig.of(1, 3, LocalRing.LOOPBACK, RingAllReduce.newSecret());
        AllReduceException tooFew = assertThrows(AllReduceException.class,
                () -> RingAllReduce.open(cfg, self -> List.of("127.0.0.1:1", self)));
        assertTrue(tooFew.getMessage().contains("returned 2 addresses, expected 3"), tooFew.getMessage());
        AllReduceException badPort = assertThrows(AllReduceException.class,
                () -> RingAllReduce.open(cfg, self -> List.of("127.0.0.1:x", self, "127.0.0.1:2")));
        assertTrue(badPort.getMessage().contains("address of rank 0"), badPort.getMessage());
    }

    private static Socket connect(String hostPort) {
        try {
            InetSocketAddress a = RingSetup.parse(hostPort, "self");
            Socket s = new Socket();
            s.connect(a, 2000);
            return s;
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
