package io.ouro.worker.comm;

/**
 * A ring all-reduce could not complete: a peer timed out, closed, failed authentication or sent a
 * frame other than the one expected. Names the peer (rank and address) and what was awaited. After it,
 * the {@link RingAllReduce} is unusable (the byte streams are out of step) and must be rebuilt.
 */
public final class AllReduceException extends RuntimeException {

    private final int peerRank;
    private final String peerAddress;

    AllReduceException(String message, int peerRank, String peerAddress, Throwable cause) {
        super(message, cause);
        this.peerRank = peerRank;
        this.peerAddress = peerAddress;
    }

    AllReduceException(String message, int peerRank, String peerAddress) {
        this(message, peerRank, peerAddress, null);
    }

    /** The peer involved, or -1 when the failure concerns no single peer. */
    public int peerRank() {
        return peerRank;
    }

    /** The peer's {@code host:port}, or null when unknown. */
    public String peerAddress() {
        return peerAddress;
    }
}
