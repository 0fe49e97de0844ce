package io.ouro.worker.comm;

import org.junit.jupiter.api.Test;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Only peers that prove the run secret, at their place in the ring, get to send data. */
class RingAuthAllReduceTest {

    private static final Duration GUARD = Duration.ofSeconds(30);

    @Test
    void rankWithTheWrongSecretCannotJoin() {
        assertTimeoutPreemptively(GUARD, () -> {
            byte[] secret = RingAllReduce.newSecret();
            byte[] other = RingAllReduce.newSecret();
            // Each rank reports its failed right handshake only once its own left handshake is settled, so no rank
            // gives up (closing its listening socket and pending handshakes) while its left neighbour still waits
            // for the CHALLENGE: every rank sees the handshake it is in, whichever fails first.
            List<String> hookFailures = Collections.synchronizedList(new ArrayList<>());
            RingSetup.hook = LocalRing.settleLeftFirst(3, hookFailures);
            List<Throwable> errors;
            try {
                List<Function<String, List<String>>> gathers = LocalRing.allGather(3, Duration.ofSeconds(10));
                errors = LocalRing.failures(3, r -> () -> RingAllReduce.open(
                        RingConfig.of(r, 3, LocalRing.LOOPBACK, r == 1 ? other : secret)
                                .withTimeouts(Duration.ofSeconds(3), Duration.ofSeconds(1)), gathers.get(r)).close());
            } finally {
                RingSetup.hook = null;
            }
            assertEquals(List.of(), hookFailures);
            for (int r = 0; r < 3; r++) {
                assertInstanceOf(AllReduceException.class, errors.get(r), "rank " + r + " joined a ring with a wrong-secret member");
            }
            // rank 0 connects to rank 1 and rank 1 to rank 2: each finds the acceptor's proof wrong
            String m0 = errors.get(0).getMessage(), m1 = errors.get(1).getMessage(), m2 = errors.get(2).getMessage();
            assertTrue(m0.contains("refusing rank 1 (") && m0.contains("did not prove knowledge of the run secret"), m0);
            assertTrue(m1.contains("refusing rank 2 (") && m1.contains("did not prove knowledge of the run secret"), m1);
            // rank 2 joined rank 0 before rank 0 gave up, refused rank 1's connection and waited out the setup time
            assertTrue(m2.contains("no authenticated connection from rank 1") && m2.contains("refused 1 connection(s)"), m2);
        });
    }

    @Test
    void connectionsWithoutTheSecretAreRefusedLoggedAndInjectNothing() {
        assertTimeoutPreemptively(GUARD, () -> {
            int world = 2;
            int len = 1000;
            byte[] secret = RingAllReduce.newSecret();
            List<Function<String, List<String>>> inner = LocalRing.allGather(world, Duration.ofSeconds(10));
            CountDownLatch roguesDone = new CountDownLatch(1);
            List<String> rogueResults = new ArrayList<>();
            // Rank 1 holds back its connection until three rogues have tried rank 0's port.
            List<Function<String, List<String>>> gathers = List.of(inner.get(0), self -> {
                List<String> all = inner.get(1).apply(self);
                String target = all.get(0);
                rogueResults.add(dataWithoutHandshake(target, len));
                rogueResults.add(handshakeWithWrongSecret(target, world));
                rogueResults.add(rightSecretWrongRingPosition(target, world, secret));
                roguesDone.countDown();
                return all;
            });
            List<LogRecord> warnings = new ArrayList<>();
            Logger jul = Logger.getLogger(RingAllReduce.class.getName());
            Handler capture = new Handler() {
                @Override
                public synchronized void publish(LogRecord rec) {
                    if (rec.getLevel().intValue() >= Level.WARNING.intValue()) {
                        warnings.add(rec);
                    }
                }

                @Override
                public void flush() {
                }

                @Override
                public void close() {
                }
            };
            jul.addHandler(capture);
            List<RingAllReduce> ranks = null;
            try {
                ranks = LocalRing.open(world, r -> RingConfig.of(r, world, LocalRing.LOOPBACK, secret)
                        .withTimeouts(Duration.ofSeconds(20), Duration.ofSeconds(5)), gathers);
                assertTrue(roguesDone.await(1, TimeUnit.SECONDS));
                assertEquals(List.of("refused", "refused", "refused"), rogueResults);
                assertEquals(3, ranks.get(0).stats().refusedConnections());
                assertEquals(0, ranks.get(1).stats().refusedConnections());
                synchronized (capture) {
                    assertEquals(3, warnings.size(), "one warning per refused connection");
                    assertTrue(warnings.get(1).getMessage().contains("HMAC mismatch"), warnings.get(1).getMessage());
                }
                float[][] in = RingSumAllReduceTest.inputs(world, len, 3);
                List<RingAllReduce> rs = ranks;
                List<float[]> out = LocalRing.parallel(world, r -> {
                    float[] b = in[r].clone();
                    rs.get(r).allReduceSum(b, 0, len);
                    return b;
                });
                float[] expected = RingSumAllReduceTest.ringOrderSum(in);
                assertArrayEquals(expected, out.get(0));
                assertArrayEquals(expected, out.get(1));
            } finally {
                jul.removeHandler(capture);
                if (ranks != null) {
                    LocalRing.closeAll(ranks);
                }
            }
        });
    }

    @Test
    void silentConnectionDoesNotHoldUpTheRealNeighbour() throws IOException {
        int world = 2;
        byte[] secret = RingAllReduce.newSecret();
        List<Function<String, List<String>>> inner = LocalRing.allGather(world, Duration.ofSeconds(10));
        List<Socket> silent = new ArrayList<>();
        // Rank 1 first opens a connection to rank 0 that never says a word, then joins for real.
        List<Function<String, List<String>>> gathers = List.of(inner.get(0), self -> {
            List<String> all = inner.get(1).apply(self);
            try {
                silent.add(open(all.get(0)));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            return all;
        });
        try {
            // The handshake wait is 60 s: joining within the guard means the silent socket was not waited on first.
            List<RingAllReduce> ranks = assertTimeoutPreemptively(GUARD, () -> LocalRing.open(world,
                    r -> RingConfig.of(r, world, LocalRing.LOOPBACK, secret)
                            .withTimeouts(Duration.ofSeconds(60), Duration.ofSeconds(60)), gathers));
            try {
                assertEquals(1, ranks.get(0).stats().refusedConnections());
                float[][] in = RingSumAllReduceTest.inputs(world, 77, 9);
                List<float[]> out = LocalRing.parallel(world, r -> {
                    float[] b = in[r].clone();
                    ranks.get(r).allReduceSum(b, 0, b.length);
                    return b;
                });
                assertArrayEquals(RingSumAllReduceTest.ringOrderSum(in), out.get(0));
            } finally {
                LocalRing.closeAll(ranks);
            }
            assertEquals("refused", readUntilClosed(silent.get(0).getInputStream()), "the silent connection is closed");
        } finally {
            for (Socket s : silent) {
                s.close();
            }
        }
    }

    @Test
    void secretIsValidatedAndNeverPrinted() {
        byte[] s = RingAllReduce.newSecret();
        RingConfig c = RingConfig.of(0, 2, LocalRing.LOOPBACK, s);
        assertTrue(c.toString().contains("secret=<32 bytes>"), c.toString());
        IllegalArgumentException shortSecret = assertThrows(IllegalArgumentException.class,
                () -> RingConfig.of(0, 2, LocalRing.LOOPBACK, new byte[8]));
        assertTrue(shortSecret.getMessage().contains("RingConfig.secret"), shortSecret.getMessage());
        assertThrows(IllegalArgumentException.class, () -> RingConfig.of(2, 2, LocalRing.LOOPBACK, s));
    }

    // ------------------------------------------------------------ rogues; each returns "refused" or what it got

    /** Sends a well-formed data frame of huge values straight away, as if already authenticated. */
    private static String dataWithoutHandshake(String target, int len) {
        try (Socket s = open(target)) {
            ByteBuffer frame = ByteBuffer.allocate(RingAllReduce.HEADER_BYTES + 4 * len).order(ByteOrder.LITTLE_ENDIAN);
            frame.putInt(1).putInt(0).putInt(0).putInt(len / 2);
            while (frame.hasRemaining()) {
                frame.putFloat(1e30f);
            }
            try {
                s.getOutputStream().write(frame.array());
            } catch (IOException e) {
                return "refused";
            }
            return readUntilClosed(s.getInputStream());
        } catch (IOException e) {
            return "error " + e;
        }
    }

    /** Speaks the protocol as rank 1 but computes its proof with a secret of its own. */
    private static String handshakeWithWrongSecret(String target, int world) {
        byte[] wrong = new byte[32];
        new SecureRandom().nextBytes(wrong);
        return handshake(target, world, 1, wrong);
    }

    /** Holds the secret but claims to be rank 0 talking to rank 0: not rank 0's left neighbour. */
    private static String rightSecretWrongRingPosition(String target, int world, byte[] secret) {
        return handshake(target, world, 0, secret);
    }

    private static String handshake(String target, int world, int claimedRank, byte[] secret) {
        try (Socket s = open(target)) {
            byte[] nonceC = new byte[Handshake.NONCE];
            new SecureRandom().nextBytes(nonceC);
            ByteBuffer hello = ByteBuffer.allocate(Handshake.HELLO_BYTES).order(ByteOrder.LITTLE_ENDIAN)
                    .putInt(Handshake.MAGIC).putInt(Handshake.VERSION).putInt(world).putInt(claimedRank).putInt(0)
                    .putInt(WireDtype.FP32.code).put(nonceC);
            s.getOutputStream().write(hello.array());
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] challenge = new byte[Handshake.CHALLENGE_BYTES];
            try {
                in.readFully(challenge);
            } catch (IOException e) {
                return "refused";
            }
            byte[] nonceS = new byte[Handshake.NONCE];
            System.arraycopy(challenge, 12, nonceS, 0, Handshake.NONCE);
            s.getOutputStream().write(Handshake.mac(secret, Handshake.CONNECTOR_LABEL, world, claimedRank, 0,
                    WireDtype.FP32.code, nonceC, nonceS));
            return readUntilClosed(in);
        } catch (IOException e) {
            return "error " + e;
        }
    }

    private static Socket open(String target) throws IOException {
        Socket s = new Socket();
        s.connect(RingSetup.parse(target, "rank 0"), 5000);
        s.setSoTimeout(10_000);
        return s;
    }

    /** "refused" if the server closes (or resets) without sending a byte. */
    private static String readUntilClosed(InputStream in) throws IOException {
        try {
            int b = in.read();
            return b < 0 ? "refused" : "server sent byte " + b;
        } catch (SocketTimeoutException e) {
            return "server kept the connection open";
        } catch (IOException e) {
            return "refused";
        }
    }
}
