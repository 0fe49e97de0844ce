package io.ouro.worker.comm;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Where each task sits in the ring: tasks sorted by host, then by device address, then by partition id, so
 * that the tasks of one host are neighbours and the ring crosses each host boundary once per direction
 * (with H hosts, H of the W hops go over the network instead of about W(H-1)/H when the ring follows
 * partition ids). Every task computes the order from the same all-gathered list, so every task gets the
 * same order; it does not depend on the order of that list. Positions are the ranks of
 * {@link RingConfig}: the position a task is given is its rank for everything (see {@code worker/COMM.md}).
 */
public final class RingOrder {

    /** One task of the barrier stage: its host, the device it runs on ("gpu:3", "cpu"), its partition id. */
    public record Member(String host, String device, int partition) {
        public Member {
            if (host == null || device == null) {
                throw new IllegalArgumentException("RingOrder.Member: host and device required, got " + host + ", " + device);
            }
        }
    }

    /** Host, then device (trailing numbers compared as numbers: gpu:2 before gpu:10), then partition id. */
    static final Comparator<Member> ORDER = Comparator.comparing(Member::host)
            .thenComparing(Member::device, RingOrder::compareDevices)
            .thenComparingInt(Member::partition);

    private RingOrder() {
    }

    /**
     * The ring position of every partition: {@code positions(m)[p]} is the rank of partition {@code p}.
     * {@code members} holds each partition id 0..W-1 exactly once, in any order.
     */
    public static int[] positions(List<Member> members) {
        int world = members.size();
        boolean[] seen = new boolean[world];
        for (Member m : members) {
            if (m.partition() < 0 || m.partition() >= world || seen[m.partition()]) {
                throw new IllegalArgumentException("RingOrder: expected each partition id in [0, " + world
                        + ") once, got " + m.partition() + (m.partition() >= 0 && m.partition() < world ? " twice" : ""));
            }
            seen[m.partition()] = true;
        }
        List<Member> sorted = new ArrayList<>(members);
        sorted.sort(ORDER);
        int[] pos = new int[world];
        for (int i = 0; i < world; i++) {
            pos[sorted.get(i).partition()] = i;
        }
        return pos;
    }

    /** A list indexed by partition id (what Spark's all-gather returns) re-indexed by ring position. */
    public static <T> List<T> byPosition(List<T> byPartition, int[] positions) {
        if (byPartition.size() != positions.length) {
            throw new IllegalArgumentException("RingOrder.byPosition: " + byPartition.size() + " entries for "
                    + positions.length + " partitions");
        }
        List<T> out = new ArrayList<>(byPartition);
        for (int p = 0; p < positions.length; p++) {
            out.set(positions[p], byPartition.get(p));
        }
        return out;
    }

    /** Device addresses compared by their text before the trailing digits, then by the trailing number. */
    static int compareDevices(String a, String b) {
        int ia = digitsFrom(a), ib = digitsFrom(b);
        int c = a.substring(0, ia).compareTo(b.substring(0, ib));
        if (c != 0) {
            return c;
        }
        String na = stripZeros(a.substring(ia)), nb = stripZeros(b.substring(ib));
        c = na.length() != nb.length() ? Integer.compare(na.length(), nb.length()) : na.compareTo(nb);
        return c != 0 ? c : a.compareTo(b);
    }

    private static int digitsFrom(String s) {
        int i = s.length();
        while (i > 0 && s.charAt(i - 1) >= '0' && s.charAt(i - 1) <= '9') {
            i--;
        }
        return i;
    }

    private static String stripZeros(String digits) {
        int i = 0;
        while (i < digits.length() - 1 && digits.charAt(i) == '0') {
            i++;
        }
        return digits.substring(i);
    }
}
