package io.ouro.orchestrator.checkpoint;

import io.ouro.worker.model.TensorSource;
import io.ouro.worker.model.TensorView;

import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A host copy of one rank's share of the weights and moments (its range of the {@link FlatIndex}, one
 * array per piece, so no array is larger than a tensor), taken between two segments so that the shard can
 * be written in the background while the next segment changes the state.
 */
public final class ShardSnapshot {

    private final Map<StateKind, Map<String, float[]>> pieces = new EnumMap<>(StateKind.class);
    private final Map<String, Long> pieceStart = new HashMap<>();

    public ShardSnapshot(FlatIndex index, int rank, int world, Map<StateKind, TensorSource> state) {
        long[] range = index.range(rank, world);
        List<FlatIndex.Piece> list = index.pieces(range[0], range[1]);
        for (StateKind k : StateKind.values()) {
            Map<String, float[]> m = new HashMap<>();
            for (FlatIndex.Piece p : list) {
                TensorView t = index.tensors().get(p.tensor());
                float[] a = new float[Math.toIntExact(p.length())];
                state.get(k).read(t, p.start(), a, 0, a.length);
                m.put(t.name(), a);
                pieceStart.put(t.name(), p.start());
            }
            pieces.put(k, m);
        }
    }

    /** The snapshot as the writer reads it; only ranges inside this rank's pieces exist. */
    public Map<StateKind, TensorSource> sources() {
        Map<StateKind, TensorSource> out = new EnumMap<>(StateKind.class);
        for (StateKind k : StateKind.values()) {
            Map<String, float[]> m = pieces.get(k);
            out.put(k, (t, start, dst, off, len) -> System.arraycopy(m.get(t.name()),
                    Math.toIntExact(start - pieceStart.get(t.name())), dst, off, len));
        }
        return out;
    }
}
