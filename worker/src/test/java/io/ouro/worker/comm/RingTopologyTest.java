package io.ouro.worker.comm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Ranks ordered by host: the ring crosses each host boundary once per direction whatever partition ids
 * Spark hands out, every task computes the same order from the all-gathered list, and a ring wired through
 * the order sums exactly as a ring of those ranks in that order.
 */
@Timeout(120)
class RingTopologyTest {

    /** 4 hosts of 8 GPUs, partition ids dealt round-robin or at random over the tasks, as Spark may. */
    @ParameterizedTest(name = "seed={0}")
    @ValueSource(ints = {-1, 1, 2, 3})
    void ringCrossesEachHostBoundaryOncePerDirection(int seed) {
        List<RingOrder.Member> members = new ArrayList<>();
        List<Integer> ids = new ArrayList<>();
        for (int p = 0; p < 32; p++) {
            ids.add(p);
        }
        if (seed >= 0) {
            Collections.shuffle(ids, new Random(seed));
        }
        for (int i = 0; i < 32; i++) {
            // seed -1: partition p on host p mod 4, the worst case for a ring by partition id (every hop crosses)
            members.add(new RingOrder.Member("node-" + (i % 4), "gpu:" + (i / 4), ids.get(i)));
        }
        String[] hostByPartition = hostsByPartition(members);
        if (seed < 0) {
            assertEquals(32, crossings(hostByPartition), "the ring by partition id: every hop crosses");
        }

        int[] pos = RingOrder.positions(members);
        String[] ring = RingOrder.byPosition(Arrays.asList(hostByPartition), pos).toArray(String[]::new);
        assertEquals(4, crossings(ring), "hops between hosts, one per host boundary per direction: "
                + Arrays.toString(ring));
        for (int h = 0; h < 4; h++) {
            int n = 0;
            for (String host : ring) {
                n += host.equals("node-" + h) ? 1 : 0;
            }
            assertEquals(8, n);
        }
    }

    @Test
    void everyTaskComputesTheSameOrderFromAShuffledList() {
        List<RingOrder.Member> members = new ArrayList<>();
        for (int p = 0; p < 24; p++) {
            members.add(new RingOrder.Member("10.0.0." + (p * 7 % 3), "gpu:" + (p * 5 % 8), p));
        }
        int[] first = RingOrder.positions(members);
        Random rng = new Random(42);
        for (int t = 0; t < 20; t++) {
            List<RingOrder.Member> shuffled = new ArrayList<>(members);
            Collections.shuffle(shuffled, rng);
            assertArrayEquals(first, RingOrder.positions(shuffled));
        }
        assertEquals(24, Arrays.stream(first).distinct().count(), "a permutation of 0..W-1");
    }

    @Test
    void hostThenDeviceNumberThenPartitionId() {
        List<RingOrder.Member> members = List.of(
                new RingOrder.Member("b", "gpu:0", 0),
                new RingOrder.Member("a", "gpu:10", 1),
                new RingOrder.Member("a", "gpu:2", 2),
                new RingOrder.Member("a", "cpu", 3),
                new RingOrder.Member("a", "gpu:2", 4),   // tie on host and device (CPU tasks, local mode)
                new RingOrder.Member("a", "gpu:2", 5));
        // a/cpu, a/gpu:2 (partitions 2, 4, 5), a/gpu:10, b/gpu:0
        assertArrayEquals(new int[] {5, 4, 1, 0, 2, 3}, RingOrder.positions(members));
    }

    @Test
    void oneHostWithOneDeviceKeepsThePartitionOrder() {
        List<RingOrder.Member> members = new ArrayList<>();
        for (int p = 5; p >= 0; p--) {
            members.add(new RingOrder.Member("127.0.0.1", "cpu", p));
        }
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5}, RingOrder.positions(members));
    }

    @Test
    void unequalHostsStillCrossOncePerBoundary() {
        List<RingOrder.Member> members = new ArrayList<>();
        int[] perHost = {8, 3, 1, 5};
        int p = 0;
        for (int h = 0; h < perHost.length; h++) {
            for (int d = 0; d < perHost[h]; d++) {
                members.add(new RingOrder.Member("host" + h, "gpu:" + d, p++));
            }
        }
        Collections.shuffle(members, new Random(7));
        List<RingOrder.Member> renumbered = new ArrayList<>();
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i < members.size(); i++) {
            ids.add(i);
        }
        Collections.shuffle(ids, new Random(8));
        for (int i = 0; i < members.size(); i++) {
            renumbered.add(new RingOrder.Member(members.get(i).host(), members.get(i).device(), ids.get(i)));
        }
        int[] pos = RingOrder.positions(renumbered);
        String[] ring = RingOrder.byPosition(Arrays.asList(hostsByPartition(renumbered)), pos).toArray(String[]::new);
        assertEquals(4, crossings(ring), Arrays.toString(ring));
        assertEquals(0, crossings(new String[] {"a", "a", "a"}), "one host: no hop crosses");
    }

    @Test
    void refusesAListThatIsNotOnePartitionEach() {
        assertThrows(IllegalArgumentException.class, () -> RingOrder.positions(List.of(
                new RingOrder.Member("a", "cpu", 0), new RingOrder.Member("a", "cpu", 0))));
        assertThrows(IllegalArgumentException.class, () -> RingOrder.positions(List.of(
                new RingOrder.Member("a", "cpu", 0), new RingOrder.Member("a", "cpu", 2))));
    }

    /**
     * 6 tasks on 3 fake hosts with shuffled partition ids, wired as SegmentTask wires them: each computes its
     * position from the all-gathered (host, device) list and opens the ring with that rank and the address
     * exchange re-indexed by position. The sums are bit-identical to a plain ring over the inputs in ring order.
     */
    @Test
    void ringWiredThroughTheOrderSumsAsThePlainRingInThatOrder() {
        int world = 6;
        int[] partitionOfTask = {3, 0, 5, 1, 4, 2};
        String[] hostOfTask = {"h1", "h0", "h2", "h1", "h0", "h2"};
        String[] hostByPartition = new String[world];
        for (int t = 0; t < world; t++) {
            hostByPartition[partitionOfTask[t]] = hostOfTask[t];
        }
        int len = 10_007;
        float[][] byPartition = RingSumAllReduceTest.inputs(world, len, 2024);
        byte[] secret = RingAllReduce.newSecret();
        Duration timeout = Duration.ofSeconds(30);
        // Spark's all-gather: by partition id; the first exchange carries (host, device), the second the addresses
        List<Function<String, List<String>>> devices = LocalRing.allGather(world, timeout);
        List<Function<String, List<String>>> addresses = LocalRing.allGather(world, timeout);
        List<float[]> out = LocalRing.parallel(world, p -> {
            List<String> devs = devices.get(p).apply("gpu:" + (p % 2));
            List<RingOrder.Member> members = new ArrayList<>();
            for (int q = 0; q < world; q++) {
                members.add(new RingOrder.Member(hostByPartition[q], devs.get(q), q));
            }
            int[] pos = RingOrder.positions(members);
            RingConfig rc = RingConfig.of(pos[p], world, LocalRing.LOOPBACK, secret).withTimeouts(timeout, timeout)
                    .withChunkBytes(64);
            try (RingAllReduce ring = RingAllReduce.open(rc,
                    msg -> RingOrder.byPosition(addresses.get(p).apply(msg), pos))) {
                assertEquals(pos[p], ring.rank());
                float[] buf = byPartition[p].clone();
                ring.allReduceSum(buf, 0, len);
                return buf;
            }
        });
        List<RingOrder.Member> members = new ArrayList<>();
        for (int q = 0; q < world; q++) {
            members.add(new RingOrder.Member(hostByPartition[q], "gpu:" + (q % 2), q));
        }
        int[] pos = RingOrder.positions(members);
        float[][] byPosition = RingOrder.byPosition(Arrays.asList(byPartition), pos).toArray(float[][]::new);
        float[] expected = RingSumAllReduceTest.ringOrderSum(byPosition);
        for (int p = 0; p < world; p++) {
            assertArrayEquals(expected, out.get(p), "partition " + p + " at ring position " + pos[p]);
        }
        assertEquals(3, crossings(RingOrder.byPosition(Arrays.asList(hostByPartition), pos).toArray(String[]::new)));
    }

    private static String[] hostsByPartition(List<RingOrder.Member> members) {
        String[] out = new String[members.size()];
        for (RingOrder.Member m : members) {
            out[m.partition()] = m.host();
        }
        return out;
    }

    /** Hops i -> i+1 mod W whose two ends are on different hosts. */
    private static int crossings(String[] ring) {
        int n = 0;
        for (int i = 0; i < ring.length; i++) {
            n += ring[i].equals(ring[(i + 1) % ring.length]) ? 0 : 1;
        }
        return n;
    }
}
