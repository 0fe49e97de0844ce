package io.ouro.worker.comm;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;

/**
 * Mutual HMAC-SHA256 challenge-response between a connecting rank (the left neighbour) and the
 * accepting rank, run before any gradient byte is read. Messages (little-endian):
 * <pre>
 *   connector -> acceptor  HELLO   magic "OURO", version, world, connectorRank, acceptorRank, dtype, nonceC[32] (56 B)
 *   acceptor -> connector  CHALLENGE magic, version, dtype, nonceS[32], macA[32]                                (76 B)
 *   connector -> acceptor  PROOF   macC[32]                                                                     (32 B)
 *   acceptor -> connector  VERDICT 1                                                                            (1 B)
 *   macA = HMAC(secret, "ouro-ring/2 acceptor"  | world | connectorRank | acceptorRank | dtype | nonceC | nonceS)
 *   macC = HMAC(secret, "ouro-ring/2 connector" | world | connectorRank | acceptorRank | dtype | nonceC | nonceS)
 * </pre>
 * {@code dtype} is the ring's gradient wire dtype ({@link WireDtype}, {@link RingConfig#gradientDtype()}): ranks that
 * would read each other's frames with different widths refuse each other, each naming both dtypes. (Version 2; version
 * 1 had no dtype.)
 * Both sides contribute a fresh nonce, so no transcript can be replayed; the two labels keep one
 * side's MAC from serving as the other's; the ranks in the MAC bind the connection to its place in
 * the ring. MACs are compared in constant time. An acceptor that sees a bad HELLO or PROOF closes the
 * connection without a verdict.
 */
final class Handshake {

    static final int MAGIC = 0x4F55524F;
    static final int VERSION = 2;
    static final int NONCE = 32;
    static final int MAC = 32;
    static final int HELLO_BYTES = 24 + NONCE;
    static final int CHALLENGE_BYTES = 12 + NONCE + MAC;
    static final int PROOF_BYTES = MAC;
    static final byte ACCEPTED = 1;
    static final String ACCEPTOR_LABEL = "ouro-ring/2 acceptor";
    static final String CONNECTOR_LABEL = "ouro-ring/2 connector";

    private static final SecureRandom RANDOM = new SecureRandom();

    private Handshake() {
    }

    /** Connector side; throws {@link AllReduceException} if the acceptor does not prove the secret or refuses. */
    static void connect(PeerLink link, byte[] secret, int world, int self, WireDtype dtype, long timeoutNanos) {
        byte[] nonceC = nonce();
        ByteBuffer hello = le(HELLO_BYTES).putInt(MAGIC).putInt(VERSION).putInt(world).putInt(self)
                .putInt(link.peerRank).putInt(dtype.code).put(nonceC).flip();
        link.writeFully(hello, timeoutNanos, "handshake HELLO");
        ByteBuffer challenge = le(CHALLENGE_BYTES);
        link.readFully(challenge, timeoutNanos, "handshake CHALLENGE (a refused HELLO closes the connection)");
        challenge.flip();
        int magic = challenge.getInt();
        int version = challenge.getInt();
        if (magic != MAGIC || version != VERSION) {
            throw refused(link, self, String.format("it answered with magic 0x%08x version %d, expected 0x%08x version %d",
                    magic, version, MAGIC, VERSION));
        }
        int theirs = challenge.getInt();
        if (theirs != dtype.code) {
            throw refused(link, self, dtypeMismatch(theirs, dtype));
        }
        byte[] nonceS = new byte[NONCE];
        byte[] macA = new byte[MAC];
        challenge.get(nonceS).get(macA);
        byte[] expected = mac(secret, ACCEPTOR_LABEL, world, self, link.peerRank, dtype.code, nonceC, nonceS);
        if (!MessageDigest.isEqual(expected, macA)) {
            throw refused(link, self, "it did not prove knowledge of the run secret (HMAC mismatch)");
        }
        link.writeFully(ByteBuffer.wrap(mac(secret, CONNECTOR_LABEL, world, self, link.peerRank, dtype.code, nonceC, nonceS)),
                timeoutNanos, "handshake PROOF");
        ByteBuffer verdict = ByteBuffer.allocate(1);
        try {
            link.readFully(verdict, timeoutNanos, "handshake VERDICT");
        } catch (AllReduceException e) {
            throw new AllReduceException("rank " + self + ": rank " + link.peerRank + " (" + link.peerAddress
                    + ") refused our proof of the run secret: " + e.getMessage(), link.peerRank, link.peerAddress, e);
        }
        if (verdict.get(0) != ACCEPTED) {
            throw refused(link, self, "it answered verdict " + verdict.get(0));
        }
    }

    /**
     * Acceptor side: returns null if the connector proved the secret and is rank {@code expectedRank},
     * otherwise the reason for refusing it (the caller logs it and closes the connection).
     */
    static String accept(PeerLink link, byte[] secret, int world, int self, int expectedRank, WireDtype dtype,
                         long timeoutNanos) {
        ByteBuffer hello = le(HELLO_BYTES);
        try {
            link.readFully(hello, timeoutNanos, "handshake HELLO");
        } catch (AllReduceException e) {
            return "no HELLO: " + e.getMessage();
        }
        hello.flip();
        int magic = hello.getInt();
        int version = hello.getInt();
        int w = hello.getInt();
        int from = hello.getInt();
        int to = hello.getInt();
        int theirs = hello.getInt();
        if (magic != MAGIC || version != VERSION) {
            return String.format("HELLO with magic 0x%08x version %d, expected 0x%08x version %d", magic, version, MAGIC, VERSION);
        }
        if (w != world || to != self || from != expectedRank) {
            return "HELLO from rank " + from + " of " + w + " for rank " + to + ", expected rank " + expectedRank
                    + " of " + world + " for rank " + self;
        }
        byte[] nonceC = new byte[NONCE];
        hello.get(nonceC);
        byte[] nonceS = nonce();
        ByteBuffer challenge = le(CHALLENGE_BYTES).putInt(MAGIC).putInt(VERSION).putInt(dtype.code).put(nonceS)
                .put(mac(secret, ACCEPTOR_LABEL, world, from, self, dtype.code, nonceC, nonceS)).flip();
        if (theirs != dtype.code) {
            // answer with our dtype first, so the connector can name both; then refuse
            try {
                link.writeFully(challenge, timeoutNanos, "handshake CHALLENGE");
            } catch (AllReduceException e) {
                // the refusal below says why
            }
            return "HELLO from rank " + from + ": " + dtypeMismatch(theirs, dtype);
        }
        ByteBuffer proof = ByteBuffer.allocate(PROOF_BYTES);
        try {
            link.writeFully(challenge, timeoutNanos, "handshake CHALLENGE");
            link.readFully(proof, timeoutNanos, "handshake PROOF");
        } catch (AllReduceException e) {
            return "no PROOF: " + e.getMessage();
        }
        if (!MessageDigest.isEqual(mac(secret, CONNECTOR_LABEL, world, from, self, dtype.code, nonceC, nonceS), proof.array())) {
            return "wrong PROOF: the connector does not hold the run secret (HMAC mismatch)";
        }
        try {
            link.writeFully(ByteBuffer.wrap(new byte[] {ACCEPTED}), timeoutNanos, "handshake VERDICT");
        } catch (AllReduceException e) {
            return "could not send VERDICT: " + e.getMessage();
        }
        return null;
    }

    static byte[] mac(byte[] secret, String label, int world, int connector, int acceptor, int dtype, byte[] nonceC,
                      byte[] nonceS) {
        try {
            Mac m = Mac.getInstance("HmacSHA256");
            m.init(new SecretKeySpec(secret, "HmacSHA256"));
            m.update(label.getBytes(StandardCharsets.US_ASCII));
            m.update(le(16).putInt(world).putInt(connector).putInt(acceptor).putInt(dtype).array());
            m.update(nonceC);
            m.update(nonceS);
            return m.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available in this JVM", e);
        }
    }

    /** A fresh random secret for one run (the driver generates it and hands it to every task). */
    static byte[] newSecret() {
        return nonce();
    }

    private static byte[] nonce() {
        byte[] b = new byte[NONCE];
        RANDOM.nextBytes(b);
        return b;
    }

    private static String dtypeMismatch(int theirs, WireDtype ours) {
        return "it exchanges gradients in " + WireDtype.nameOf(theirs) + ", this rank in " + ours.yamlName()
                + " (every rank must have the same train.exchange_dtype)";
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static AllReduceException refused(PeerLink link, int self, String why) {
        return new AllReduceException("rank " + self + ": refusing rank " + link.peerRank + " (" + link.peerAddress
                + ") during the handshake: " + why, link.peerRank, link.peerAddress);
    }
}
