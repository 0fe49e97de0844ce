package io.ouro.orchestrator.checkpoint;

import io.ouro.worker.model.TensorView;

import java.util.ArrayList;
import java.util.List;

/**
 * The tensors of a model placed end to end in one index space of {@code long} element positions (their
 * order in the layout, no padding): what checkpoint shards are cut from. Rank r of W owns
 * {@code [r * total / W, (r + 1) * total / W)}; a range cuts tensors into {@link Piece}s.
 */
public final class FlatIndex {

    private final List<TensorView> tensors;
    private final long[] start;
    private final long total;

    public FlatIndex(List<TensorView> tensors) {
        this.tensors = List.copyOf(tensors);
        this.start = new long[tensors.size() + 1];
        for (int i = 0; i < tensors.size(); i++) {
            start[i + 1] = start[i] + tensors.get(i).size();
        }
        this.total = start[tensors.size()];
    }

    public List<TensorView> tensors() {
        return tensors;
    }

    public long total() {
        return total;
    }

    /** Where tensor {@code i} starts in the index space. */
    public long start(int i) {
        return start[i];
    }

    /** {@code [from, to)} of rank {@code rank} of {@code world}. */
    public long[] range(int rank, int world) {
        return new long[] {bound(total, rank, world), bound(total, rank + 1, world)};
    }

    /**
     * Where rank {@code rank}'s range of {@code total} elements starts (rank W: the end): the one rule for who holds
     * what, used by checkpoint shards and by ZeRO-1's optimizer slices.
     */
    public static long bound(long total, int rank, int world) {
        return Math.multiplyExact(total, rank) / world;
    }

    /** Elements {@code [start, start + length)} of tensor {@code tensor} (its index in the layout). */
    public record Piece(int tensor, long start, long length) {
    }

    /** The pieces of {@code [from, to)}, in order. */
    public List<Piece> pieces(long from, long to) {
        List<Piece> out = new ArrayList<>();
        for (int i = 0; i < tensors.size(); i++) {
            long a = Math.max(from, start[i]), b = Math.min(to, start[i + 1]);
            if (a < b) {
                out.add(new Piece(i, a - start[i], b - a));
            }
        }
        return out;
    }
}
