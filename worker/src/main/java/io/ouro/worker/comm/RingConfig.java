package io.ouro.worker.comm;

import java.time.Duration;
import java.util.Arrays;

/**
 * Where one rank of a {@link RingAllReduce} listens and how long it waits.
 *
 * @param rank           this rank, 0 &lt;= rank &lt; worldSize
 * @param worldSize      number of ranks W
 * @param bindHost       address the listening socket binds to (tests: 127.0.0.1)
 * @param advertiseHost  host the other ranks connect to; the bind host unless it is a wildcard
 * @param secret         per-run secret every rank holds (at least 16 bytes); peers prove it by HMAC
 * @param setupTimeout   bound on connecting to the right neighbour and accepting the left one, handshakes included
 * @param ioTimeout      bound on every single wait for a peer once connected: a read that gets no byte, a
 *                       write the peer does not drain, a handshake message
 * @param chunkBytes     float32 bytes per frame (a frame carries chunkBytes/4 values whatever the wire dtype);
 *                       segments are cut into chunks so sending and receiving overlap
 * @param gradientDtype  the wire dtype calls may ask for besides fp32 ({@code train.exchange_dtype}); every rank
 *                       of a ring must have the same one, which the handshake checks
 */
public record RingConfig(int rank, int worldSize, String bindHost, String advertiseHost, byte[] secret,
                         Duration setupTimeout, Duration ioTimeout, int chunkBytes, WireDtype gradientDtype) {

    /** Payload per frame unless configured: large enough to amortise the 16-byte header and a syscall. */
    public static final int DEFAULT_CHUNK_BYTES = 256 * 1024;
    static final int MIN_SECRET_BYTES = 16;

    public RingConfig {
        if (worldSize < 1) {
            throw new IllegalArgumentException("RingConfig.worldSize: expected >= 1, got " + worldSize);
        }
        if (rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException(
                    "RingConfig.rank: expected 0 <= rank < worldSize (" + worldSize + "), got " + rank);
        }
        if (bindHost == null || bindHost.isBlank()) {
            throw new IllegalArgumentException("RingConfig.bindHost: expected a host or address, got '" + bindHost + "'");
        }
        if (advertiseHost == null || advertiseHost.isBlank()) {
            if (bindHost.equals("0.0.0.0") || bindHost.equals("::")) {
                throw new IllegalArgumentException("RingConfig.advertiseHost: required when bindHost is the wildcard "
                        + bindHost + " (peers need an address they can reach)");
            }
            advertiseHost = bindHost;
        }
        if (secret == null || secret.length < MIN_SECRET_BYTES) {
            throw new IllegalArgumentException("RingConfig.secret: expected at least " + MIN_SECRET_BYTES
                    + " bytes, got " + (secret == null ? "none" : secret.length));
        }
        secret = secret.clone();
        positive("setupTimeout", setupTimeout);
        positive("ioTimeout", ioTimeout);
        if (chunkBytes < 4 || chunkBytes % 4 != 0 || chunkBytes > (1 << 30)) {
            throw new IllegalArgumentException(
                    "RingConfig.chunkBytes: expected a multiple of 4 in [4, 2^30], got " + chunkBytes);
        }
        if (gradientDtype == null) {
            throw new IllegalArgumentException("RingConfig.gradientDtype: expected fp32 or bf16, got null");
        }
    }

    /** With fp32 gradients. */
    public RingConfig(int rank, int worldSize, String bindHost, String advertiseHost, byte[] secret,
                      Duration setupTimeout, Duration ioTimeout, int chunkBytes) {
        this(rank, worldSize, bindHost, advertiseHost, secret, setupTimeout, ioTimeout, chunkBytes, WireDtype.FP32);
    }

    /** Rank {@code rank} of {@code worldSize} on {@code host}, 30 s setup, 30 s per wait, default chunks, fp32. */
    public static RingConfig of(int rank, int worldSize, String host, byte[] secret) {
        return new RingConfig(rank, worldSize, host, host, secret,
                Duration.ofSeconds(30), Duration.ofSeconds(30), DEFAULT_CHUNK_BYTES);
    }

    public RingConfig withTimeouts(Duration setup, Duration io) {
        return new RingConfig(rank, worldSize, bindHost, advertiseHost, secret, setup, io, chunkBytes, gradientDtype);
    }

    public RingConfig withChunkBytes(int bytes) {
        return new RingConfig(rank, worldSize, bindHost, advertiseHost, secret, setupTimeout, ioTimeout, bytes,
                gradientDtype);
    }

    public RingConfig withGradientDtype(WireDtype dtype) {
        return new RingConfig(rank, worldSize, bindHost, advertiseHost, secret, setupTimeout, ioTimeout, chunkBytes, dtype);
    }

    @Override
    public byte[] secret() {
        return secret.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RingConfig c && rank == c.rank && worldSize == c.worldSize
                && bindHost.equals(c.bindHost) && advertiseHost.equals(c.advertiseHost)
                && Arrays.equals(secret, c.secret) && setupTimeout.equals(c.setupTimeout)
                && ioTimeout.equals(c.ioTimeout) && chunkBytes == c.chunkBytes && gradientDtype == c.gradientDtype;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(rank, worldSize, bindHost, advertiseHost, setupTimeout, ioTimeout, chunkBytes, gradientDtype);
    }

    /** Never prints the secret. */
    @Override
    public String toString() {
        return "RingConfig[rank=" + rank + ", worldSize=" + worldSize + ", bind=" + bindHost
                + ", advertise=" + advertiseHost + ", secret=<" + secret.length + " bytes>, setupTimeout="
                + setupTimeout + ", ioTimeout=" + ioTimeout + ", chunkBytes=" + chunkBytes + ", gradientDtype=" + gradientDtype.yamlName() + "]";
    }

    private static void positive(String field, Duration d) {
        if (d == null || d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException("RingConfig." + field + ": expected a positive duration, got " + d);
        }
    }
}
