package io.ouro.worker.comm;

/**
 * Who sends and receives which segment at each step of the ring, for one call on {@code len}
 * elements. The buffer is cut into W contiguous segments, the first {@code len % W} of them one
 * element longer: segment s starts at {@code s*(len/W) + min(s, len%W)}.
 * <ul>
 *   <li>Reduce-scatter, steps k = 0 … W-2: rank r sends segment (r-k) mod W to rank r+1 and receives
 *       segment (r-k-1) mod W from rank r-1, which it adds to its own copy. Segment s thus starts at
 *       rank s and is summed as (((x_s + x_{s+1}) + x_{s+2}) + … + x_{s+W-1}) (ranks mod W), ending
 *       complete at rank s-1.</li>
 *   <li>All-gather, steps k = W-1 … 2W-3 (j = k-W+1): rank r sends segment (r+1-j) mod W and receives
 *       segment (r-j) mod W, which replaces its copy, so every rank ends with the same bits.</li>
 * </ul>
 * The segment a rank sends at step k+1 is the one it received at step k, chunk for chunk, so chunk c
 * of step k+1 may leave as soon as chunk c of step k has arrived (the pipelining).
 */
final class RingSchedule {

    final int world;
    final int rank;
    final int len;
    final int chunkElems;
    /** Where each segment starts and how long it is (the even split unless given). */
    private final int[] starts;
    private final int[] lengths;

    RingSchedule(int world, int rank, int len, int chunkElems) {
        this(world, rank, len, chunkElems, null);
    }

    /**
     * With {@code owned[r]} = {@code {start, length}} of the range rank r must end holding complete (reduce-scatter)
     * or holds complete to begin with (all-gather): that range is segment (r+1) mod W, which the reduce-scatter leaves
     * complete at rank r. The ranges must tile {@code [0, len)}; null gives the even split.
     */
    RingSchedule(int world, int rank, int len, int chunkElems, int[][] owned) {
        this.world = world;
        this.rank = rank;
        this.len = len;
        this.chunkElems = chunkElems;
        this.starts = new int[world];
        this.lengths = new int[world];
        long covered = 0;
        for (int s = 0; s < world; s++) {
            if (owned == null) {
                starts[s] = segmentStart(len, world, s);
                lengths[s] = segmentLength(len, world, s);
            } else {
                int[] o = owned[Math.floorMod(s - 1, world)];
                if (o[0] < 0 || o[1] < 0 || o[0] > len - o[1]) {
                    throw new IllegalArgumentException("owned range [" + o[0] + ", +" + o[1] + ") of rank "
                            + Math.floorMod(s - 1, world) + " outside a call of " + len + " elements");
                }
                starts[s] = o[0];
                lengths[s] = o[1];
            }
            covered += lengths[s];
        }
        if (covered != len) {
            throw new IllegalArgumentException("owned ranges cover " + covered + " of " + len + " elements");
        }
    }

    int steps() {
        return 2 * (world - 1);
    }

    boolean reduces(int step) {
        return step < world - 1;
    }

    int sendSegment(int step) {
        return step < world - 1 ? mod(rank - step) : mod(rank + 1 - (step - (world - 1)));
    }

    int recvSegment(int step) {
        return step < world - 1 ? mod(rank - step - 1) : mod(rank - (step - (world - 1)));
    }

    int segmentStart(int s) {
        return starts[s];
    }

    int segmentLength(int s) {
        return lengths[s];
    }

    int chunks(int s) {
        int n = segmentLength(s);
        return n / chunkElems + (n % chunkElems == 0 ? 0 : 1);
    }

    static int segmentStart(int len, int world, int s) {
        return s * (len / world) + Math.min(s, len % world);
    }

    static int segmentLength(int len, int world, int s) {
        return len / world + (s < len % world ? 1 : 0);
    }

    /** Segment index of element i (0 &lt;= i &lt; len). */
    static int segmentOf(int len, int world, int i) {
        int q = len / world;
        int rem = len % world;
        int longPart = rem * (q + 1);
        return i < longPart ? i / (q + 1) : rem + (i - longPart) / q;
    }

    /**
     * Payload floats rank r sends in one call: every segment but (r+1) in the reduce-scatter, every
     * segment but (r+2) in the all-gather, i.e. {@code 2*len - |seg (r+1)| - |seg (r+2)|} (mod W);
     * {@code 2(W-1)/W * len} when W divides len.
     */
    static long payloadFloatsSent(int len, int world, int rank) {
        if (world == 1) {
            return 0;
        }
        return 2L * len - segmentLength(len, world, (rank + 1) % world) - segmentLength(len, world, (rank + 2) % world);
    }

    /** Payload floats rank r receives: every segment but r, then every segment but (r+1). */
    static long payloadFloatsReceived(int len, int world, int rank) {
        if (world == 1) {
            return 0;
        }
        return 2L * len - segmentLength(len, world, rank) - segmentLength(len, world, (rank + 1) % world);
    }

    private int mod(int x) {
        return Math.floorMod(x, world);
    }
}
