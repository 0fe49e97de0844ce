package io.ouro.orchestrator.checkpoint;

import io.ouro.worker.model.FlatTensors;
import io.ouro.worker.model.TensorSource;
import io.ouro.worker.hf.Safetensors;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CheckpointTest {

    @TempDir
    java.nio.file.Path tmp;

    final ParamLayout layout = new ParamLayout(new LoopConfig(31, 8, 2, 2, 12, 2, 10_000, 1e-6, 0.1, 0.02, 1));
    final FlatIndex index = new FlatIndex(layout.tensors());

    float[] random(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] a = new float[layout.arraySize()];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    CheckpointStore store() throws IOException {
        return new CheckpointStore(tmp.toUri().toString(), 3, new Configuration());
    }

    Map<StateKind, TensorSource> state(long step) {
        return Map.of(StateKind.MODEL, FlatTensors.source(random(step)), StateKind.EXP_AVG,
                FlatTensors.source(random(step + 100)), StateKind.EXP_AVG_SQ, FlatTensors.source(random(step + 200)));
    }

    /** The shards of ranks {@code ranks} of {@code world} for {@code step}, into its pending directory. */
    Path writeShards(CheckpointStore s, long step, int world, String hash, int... ranks) throws IOException {
        Path dir = s.pendingDir(step, "t" + world);
        for (int r : ranks) {
            ShardWriter.write(s.fs(), dir, index, r, world, state(step),
                    new ShardWriter.RunState(step, step - 1, hash, Map.of("stage", "main")));
        }
        return dir;
    }

    void write(CheckpointStore s, long step, int world) throws IOException {
        int[] all = java.util.stream.IntStream.range(0, world).toArray();
        assertTrue(s.tryCommit(step, writeShards(s, step, world, "h1", all), world).isPresent());
    }

    @Test
    void safetensorsRoundTripAndTruncationNamesTheOffset() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        float[] w = random(3);
        Safetensors.write(out, layout.tensors(), FlatTensors.source(w), Map.of("step", "7"));
        byte[] bytes = out.toByteArray();
        long headerLen = java.nio.ByteBuffer.wrap(bytes, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLen % 8, "header padded to 8 bytes");
        assertTrue(new String(bytes, 8, (int) headerLen).contains("\"model.embed_tokens.weight\""));
        float[] back = new float[w.length];
        Map<String, String> meta = Safetensors.read(new ByteArrayInputStream(bytes), "w.safetensors", layout.tensors(),
                FlatTensors.sink(back));
        assertArrayEquals(w, back);
        assertEquals("7", meta.get("step"));
        byte[] cut = java.util.Arrays.copyOf(bytes, bytes.length - 10);
        IOException e = assertThrows(IOException.class, () -> Safetensors.read(new ByteArrayInputStream(cut),
                "cut.safetensors", layout.tensors(), FlatTensors.sink(new float[w.length])));
        assertTrue(e.getMessage().startsWith("cut.safetensors: tensor model.early_exit_gate.weight ends at offset")
                && e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void roundTripKeepsTheLastK() throws IOException {
        CheckpointStore s = store();
        for (long step = 10; step <= 50; step += 10) {
            write(s, step, 1);
        }
        assertEquals(List.of(30L, 40L, 50L), s.steps());
        CheckpointStore.Checkpoint c = s.load(40, layout, "h1");
        assertArrayEquals(random(40), c.params());
        assertArrayEquals(random(140), c.optimizer().m());
        assertArrayEquals(random(240), c.optimizer().v());
        assertEquals(39, c.optimizer().step());
        assertEquals("main", c.extra().get("stage"));
    }

    @Test
    void shardsWrittenByTwoRanksReadBackExactlyByAnyOtherSplit() throws IOException {
        CheckpointStore s = store();
        write(s, 8, 2);
        assertEquals(2, s.info(8, "h1").world());
        CheckpointStore.Checkpoint c = s.load(8, layout, "h1");
        assertArrayEquals(random(8), c.params());
        assertArrayEquals(random(208), c.optimizer().v());
        // three readers, each taking its third of the index space through the per-tensor accessor
        float[] expected = random(108), got = new float[expected.length];
        try (CheckpointReader r = s.open(8, "h1")) {
            TensorSource src = r.source(StateKind.EXP_AVG);
            for (int rank = 0; rank < 3; rank++) {
                long[] range = index.range(rank, 3);
                for (FlatIndex.Piece p : index.pieces(range[0], range[1])) {
                    TensorView t = layout.tensors().get(p.tensor());
                    src.read(t, p.start(), got, Math.toIntExact(t.offset() + p.start()), Math.toIntExact(p.length()));
                }
            }
        }
        assertArrayEquals(expected, got);
    }

    @Test
    void aCheckpointCountsOnlyOnceEveryShardIsCommitted() throws IOException {
        CheckpointStore s = store();
        write(s, 4, 2);
        Path pending = writeShards(s, 8, 2, "h1", 1); // rank 0 never wrote its shard (its executor died)
        assertTrue(s.tryCommit(8, pending, 2).isEmpty());
        assertEquals(List.of(4L), s.steps(), "the half-written checkpoint is not visible");
        List<String> warnings = new ArrayList<>();
        assertEquals(4, s.latestValid(Long.MAX_VALUE, "h1", warnings::add).orElseThrow().step());
        assertEquals(List.of(), warnings);
        write(s, 8, 2); // another attempt of the same step
        try (var files = Files.list(tmp.resolve("checkpoints"))) {
            assertFalse(files.anyMatch(p -> p.getFileName().toString().startsWith(".pending-")),
                    "leftovers of the failed attempt are cleaned once the step is committed");
        }
        assertArrayEquals(random(8), s.load(8, layout, "h1").params());
    }

    @Test
    void aFailedShardWriteIsReportedWithItsError() throws IOException {
        CheckpointStore s = store();
        Path dir = s.pendingDir(8, "x");
        BackgroundWrites.submit("test rank 0", java.time.Duration.ofSeconds(30), s.fs(), dir, 0, 1, () -> {
            throw new IOException("disk full");
        });
        List<String> log = new ArrayList<>();
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!s.fs().exists(new Path(dir, CheckpointStore.errorName(0, 1))) && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        var e = assertThrows(CheckpointStore.WriteFailedException.class, () -> s.tryCommit(8, dir, 1));
        assertTrue(e.getMessage().contains("IOException: disk full"), e.getMessage());
        CheckpointCommitter logged = new CheckpointCommitter(s, log::add);
        logged.expect(8, dir, 1);
        assertEquals(List.of(), logged.await(java.time.Duration.ofSeconds(5)));
        assertTrue(log.get(0).contains("not committed, a shard write failed") && log.get(0).contains("disk full"),
                log.toString());
    }

    @Test
    void backgroundShardsAreCommittedByTheCommitter() throws IOException {
        CheckpointStore s = store();
        Path dir = s.pendingDir(6, "bg");
        for (int r = 0; r < 3; r++) {
            int rank = r;
            ShardSnapshot snap = new ShardSnapshot(index, rank, 3, state(6));
            BackgroundWrites.submit("bg rank " + r, java.time.Duration.ofSeconds(30), s.fs(), dir, rank, 3,
                    () -> ShardWriter.write(s.fs(), dir, index, rank, 3, snap.sources(),
                            new ShardWriter.RunState(6, 5, "h1", Map.of())));
        }
        List<String> log = new ArrayList<>();
        CheckpointCommitter c = new CheckpointCommitter(s, log::add);
        c.expect(6, dir, 3);
        assertEquals(List.of(), c.await(java.time.Duration.ofSeconds(30)));
        assertTrue(log.get(0).startsWith("checkpoint of step 6 committed"), log.toString());
        assertArrayEquals(random(106), s.load(6, layout, "h1").optimizer().m());
    }

    @Test
    void aCorruptShardIsFoundWhenReadAndSkippedAfterwards() throws IOException {
        CheckpointStore s = store();
        write(s, 4, 1);
        write(s, 8, 1);
        java.nio.file.Path shard = tmp.resolve("checkpoints").resolve(CheckpointStore.dirName(8))
                .resolve(CheckpointStore.shardName(0, 1));
        try (RandomAccessFile f = new RandomAccessFile(shard.toFile(), "rw")) {
            f.seek(f.length() - 3);
            f.write(0x5A);
        }
        // the search reads metadata only; the flipped byte is found by the reader, which marks the checkpoint
        assertEquals(8, s.latestValid(Long.MAX_VALUE, "h1", m -> { }).orElseThrow().step());
        IOException e = assertThrows(IOException.class, () -> s.load(8, layout, "h1"));
        // our block checksum, or Hadoop's own checksum on filesystems that keep one, names the file
        assertTrue((e.getMessage().contains("CRC32C") || e.getMessage().contains("Checksum error"))
                && e.getMessage().contains(CheckpointStore.shardName(0, 1)), e.getMessage());
        List<String> warnings = new ArrayList<>();
        assertEquals(4, s.latestValid(Long.MAX_VALUE, "h1", warnings::add).orElseThrow().step());
        assertEquals(1, warnings.size());
        assertTrue(warnings.get(0).contains("marked corrupt"), warnings.get(0));

        // a truncated shard is seen from its size alone
        java.nio.file.Path shard4 = tmp.resolve("checkpoints").resolve(CheckpointStore.dirName(4))
                .resolve(CheckpointStore.shardName(0, 1));
        try (RandomAccessFile f = new RandomAccessFile(shard4.toFile(), "rw")) {
            f.setLength(f.length() - 100);
        }
        warnings.clear();
        assertTrue(s.latestValid(Long.MAX_VALUE, "h1", warnings::add).isEmpty());
        assertTrue(warnings.get(1).contains(CheckpointStore.shardName(0, 1)) && warnings.get(1).contains("bytes"),
                warnings.toString());
    }

    @Test
    void aCheckpointOfAnotherConfigIsRefused() throws IOException {
        CheckpointStore s = store();
        write(s, 4, 1);
        var e = assertThrows(CheckpointStore.ConfigMismatchException.class,
                () -> s.latestValid(Long.MAX_VALUE, "other", m -> { }));
        assertTrue(e.getMessage().contains("config hash h1") && e.getMessage().contains("refusing"), e.getMessage());
    }
}
