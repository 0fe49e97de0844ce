package io.ouro.worker.comm;

/**
 * Counters of one rank since its {@link RingAllReduce} was opened.
 *
 * @param payloadBytesSent      value bytes this rank sent in all-reduce frames (4 per fp32 value, 2 per bf16)
 * @param framingBytesSent      frame header bytes this rank sent (16 per frame)
 * @param payloadBytesReceived  value bytes received
 * @param framingBytesReceived  frame header bytes received
 * @param handshakeBytesSent    bytes of the two authenticated handshakes this rank took part in
 * @param handshakeBytesReceived as above, received
 * @param refusedConnections    connections to this rank's listening socket refused during setup
 * @param calls                 all-reduce calls that moved data (W &gt; 1, len &gt; 0)
 * @param commNanos             wall time those calls took, from the start of sending to the last byte
 *                              received and reduced
 */
public record CommStats(long payloadBytesSent, long framingBytesSent, long payloadBytesReceived,
                        long framingBytesReceived, long handshakeBytesSent, long handshakeBytesReceived,
                        long refusedConnections, long calls, long commNanos) {
}
