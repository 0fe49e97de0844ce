package io.ouro.orchestrator.checkpoint;

import io.ouro.worker.model.TensorSink;
import io.ouro.worker.model.TensorSource;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Files;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A checkpoint whose shard file is larger than 2^31 bytes (a 198M-parameter layout written by one rank:
 * weights and both moments, 2.4 GB) is written and read back exactly, without the state ever being in
 * memory: the tensors are synthesised element by element from (kind, tensor, index) and checked the same
 * way as they stream back, so the test needs no more heap than the transfer buffers.
 */
class LargeCheckpointTest {

    static final ParamLayout LAYOUT = new ParamLayout(new LoopConfig(65_536, 1024, 5, 8, 2816, 4, 10_000, 1e-6, 0.1,
            0.02, 1));

    /** A deterministic, well-spread float for element {@code e} of tensor {@code t} of {@code kind}. */
    static float value(StateKind kind, int t, long e) {
        long h = (kind.ordinal() + 1L) * 0x9E3779B97F4A7C15L ^ (t * 0xC2B2AE3D27D4EB4FL) + e;
        h = (h ^ (h >>> 33)) * 0xFF51AFD7ED558CCDL;
        h = (h ^ (h >>> 33)) * 0xC4CEB9FE1A85EC53L;
        return ((h >>> 40) - (1 << 23)) * 0x1p-20f;
    }

    static final Map<String, Integer> INDEX = new HashMap<>();

    static {
        for (int i = 0; i < LAYOUT.tensors().size(); i++) {
            INDEX.put(LAYOUT.tensors().get(i).name(), i);
        }
    }

    static TensorSource synthetic(StateKind kind) {
        return (t, start, dst, off, len) -> {
            int i = INDEX.get(t.name());
            for (int k = 0; k < len; k++) {
                dst[off + k] = value(kind, i, start + k);
            }
        };
    }

    /** Counts elements and mismatches against the synthetic values. */
    static final class Check implements TensorSink {
        final StateKind kind;
        final AtomicLong seen = new AtomicLong(), wrong = new AtomicLong();

        Check(StateKind kind) {
            this.kind = kind;
        }

        @Override
        public void write(TensorView t, long start, float[] src, int off, int len) {
            int i = INDEX.get(t.name());
            for (int k = 0; k < len; k++) {
                if (Float.floatToRawIntBits(src[off + k]) != Float.floatToRawIntBits(value(kind, i, start + k))) {
                    wrong.incrementAndGet();
                }
            }
            seen.addAndGet(len);
        }
    }

    @Test
    @Timeout(900)
    void aShardLargerThanTwoGibibytesIsWrittenAndReadBackExactly() throws IOException {
        java.nio.file.Path dir = java.nio.file.Path.of("target", "large-checkpoint-" + System.nanoTime()).toAbsolutePath();
        try {
            CheckpointStore store = new CheckpointStore(dir.toUri().toString(), 1, new Configuration());
            FlatIndex index = new FlatIndex(LAYOUT.tensors());
            long n = index.total();
            Map<StateKind, TensorSource> state = new EnumMap<>(StateKind.class);
            for (StateKind k : StateKind.values()) {
                state.put(k, synthetic(k));
            }
            Path pending = store.pendingDir(100, "large");
            long t0 = System.nanoTime();
            long bytes = ShardWriter.write(store.fs(), pending, index, 0, 1, state,
                    new ShardWriter.RunState(100, 100, "h", Map.of()));
            double writeS = (System.nanoTime() - t0) / 1e9;
            assertTrue(store.tryCommit(100, pending, 1).isPresent());
            assertTrue(bytes > (1L << 31), "the shard exceeds 2^31 bytes: " + bytes);
            assertEquals(bytes, Files.size(dir.resolve("checkpoints").resolve(CheckpointStore.dirName(100))
                    .resolve(CheckpointStore.shardName(0, 1))));

            long t1 = System.nanoTime();
            try (CheckpointReader r = store.open(100, "h")) {
                r.requireLayout(LAYOUT.tensors());
                for (StateKind k : StateKind.values()) {
                    Check c = new Check(k);
                    r.readAll(k, LAYOUT.tensors(), c);
                    assertEquals(n, c.seen.get(), k + ": elements read");
                    assertEquals(0, c.wrong.get(), k + ": elements that differ");
                }
                // a reader of another W takes a range that straddles byte 2^31 of the file
                TensorView head = LAYOUT.lmHead();
                float[] got = new float[1 << 20];
                Check c = new Check(StateKind.EXP_AVG_SQ);
                for (long at = 0; at < head.size(); at += got.length) {
                    int len = (int) Math.min(got.length, head.size() - at);
                    r.source(StateKind.EXP_AVG_SQ).read(head, at, got, 0, len);
                    c.write(head, at, got, 0, len);
                }
                assertEquals(0, c.wrong.get());
            }
            double readS = (System.nanoTime() - t1) / 1e9;
            System.out.printf("large checkpoint: %,d parameters, one shard of %,d bytes (%.2f GiB): written in %.1f s"
                    + " (%.0f MB/s), read back and compared in %.1f s%n", n, bytes, bytes / (double) (1L << 30), writeS,
                    bytes / writeS / 1e6, readS);
        } finally {
            if (Files.exists(dir)) {
                try (var files = Files.walk(dir)) {
                    for (java.nio.file.Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                        Files.delete(p);
                    }
                }
            }
        }
    }
}
