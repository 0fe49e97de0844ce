package io.ouro.orchestrator.checkpoint;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.OptimizerState;
import io.ouro.worker.model.ParamLayout;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
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
    Path tmp;

    final ParamLayout layout = new ParamLayout(new LoopConfig(31, 8, 2, 2, 12, 2, 10_000, 1e-6, 0.1, 0.02, 1));

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

    void write(CheckpointStore s, long step, Runnable beforeCommit) throws IOException {
        s.write(step, layout, random(step), new OptimizerState(step, random(step + 100), random(step + 200)), "h1",
                Map.of(), beforeCommit);
    }

    @Test
    void safetensorsRoundTripAndTruncationNamesTheOffset() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        float[] w = random(3);
        Safetensors.write(out, layout, w, Map.of("step", "7"));
        byte[] bytes = out.toByteArray();
        long headerLen = java.nio.ByteBuffer.wrap(bytes, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLen % 8, "header padded to 8 bytes");
        assertTrue(new String(bytes, 8, (int) headerLen).contains("\"model.embed_tokens.weight\""));
        Safetensors.Loaded back = Safetensors.read(new ByteArrayInputStream(bytes), "w.safetensors", layout);
        assertArrayEquals(w, back.flat());
        assertEquals("7", back.metadata().get("step"));
        byte[] cut = java.util.Arrays.copyOf(bytes, bytes.length - 10);
        IOException e = assertThrows(IOException.class,
                () -> Safetensors.read(new ByteArrayInputStream(cut), "cut.safetensors", layout));
        assertTrue(e.getMessage().startsWith("cut.safetensors: tensor ") && e.getMessage().contains("outside the file"),
                e.getMessage());
    }

    @Test
    void roundTripKeepsTheLastK() throws IOException {
        CheckpointStore s = store();
        for (long step = 10; step <= 50; step += 10) {
            write(s, step, null);
        }
        assertEquals(List.of(30L, 40L, 50L), s.steps());
        CheckpointStore.Checkpoint c = s.load(40, layout, "h1");
        assertArrayEquals(random(40), c.params());
        assertArrayEquals(random(240), c.optimizer().v());
        assertEquals(40, c.optimizer().step());
    }

    @Test
    void aCrashWhileWritingLeavesThePreviousCheckpointInUse() throws IOException {
        CheckpointStore s = store();
        write(s, 4, null);
        assertThrows(IllegalStateException.class, () -> write(s, 8, () -> {
            throw new IllegalStateException("killed while writing");
        }));
        assertEquals(List.of(4L), s.steps(), "the half-written checkpoint is not visible");
        List<String> warnings = new ArrayList<>();
        assertEquals(4, s.latestValid(Long.MAX_VALUE, layout, "h1", warnings::add).orElseThrow().step());
        write(s, 8, null);
        try (var files = Files.list(tmp.resolve("checkpoints"))) {
            assertFalse(files.anyMatch(p -> p.getFileName().toString().startsWith(".tmp-")),
                    "leftovers of the crashed writer are cleaned");
        }
    }

    @Test
    void aCorruptCheckpointIsSkippedWithAWarning() throws IOException {
        CheckpointStore s = store();
        write(s, 4, null);
        write(s, 8, null);
        Path model = tmp.resolve("checkpoints").resolve(CheckpointStore.dirName(8)).resolve(CheckpointStore.MODEL);
        try (RandomAccessFile f = new RandomAccessFile(model.toFile(), "rw")) {
            f.seek(f.length() - 3);
            f.write(0x5A);
        }
        List<String> warnings = new ArrayList<>();
        CheckpointStore.Checkpoint c = s.latestValid(Long.MAX_VALUE, layout, "h1", warnings::add).orElseThrow();
        assertEquals(4, c.step());
        assertEquals(1, warnings.size());
        // our SHA-256 check, or Hadoop's own checksum on filesystems that keep one, names the file
        assertTrue((warnings.get(0).contains("SHA-256") || warnings.get(0).contains("Checksum error"))
                && warnings.get(0).contains("model.safetensors"), warnings.get(0));
    }

    @Test
    void aCheckpointOfAnotherConfigIsRefused() throws IOException {
        CheckpointStore s = store();
        write(s, 4, null);
        var e = assertThrows(CheckpointStore.ConfigMismatchException.class,
                () -> s.latestValid(Long.MAX_VALUE, layout, "other", m -> { }));
        assertTrue(e.getMessage().contains("config hash h1") && e.getMessage().contains("refusing"), e.getMessage());
    }
}
