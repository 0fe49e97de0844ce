package io.ouro.tokenizer.fs;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

class HadoopFilesTest {

    @TempDir
    java.nio.file.Path dir;

    private FileSystem fs() throws IOException {
        return FileSystem.getLocal(new Configuration());
    }

    private Path path(String name) {
        return new Path(dir.resolve(name).toUri());
    }

    @Test
    void aWriteThatFailsMidwayLeavesNeitherTargetNorTemporary() throws IOException {
        FileSystem fs = fs();
        Path tmp = path(".tmp-out"), dst = path("out");
        IOException e = assertThrows(IOException.class, () -> HadoopFiles.write(fs, tmp, dst, false, out -> {
            out.write("half of it".getBytes(StandardCharsets.UTF_8));
            throw new IOException("disk gone");
        }));
        assertEquals("disk gone", e.getMessage());
        assertFalse(fs.exists(dst), "no partial target");
        assertFalse(fs.exists(tmp), "the temporary file is removed");
    }

    @Test
    void aFailedReplacementKeepsTheOldFile() throws IOException {
        FileSystem fs = fs();
        Path tmp = path(".tmp-out"), dst = path("out");
        HadoopFiles.write(fs, tmp, dst, "old".getBytes(StandardCharsets.UTF_8));
        assertThrows(IllegalStateException.class, () -> HadoopFiles.write(fs, tmp, dst, true, out -> {
            out.write('n');
            throw new IllegalStateException("bug");
        }));
        assertEquals("old", Files.readString(dir.resolve("out")));
    }

    @Test
    void writeRenamesIntoPlaceAndReplaces() throws IOException {
        FileSystem fs = fs();
        Path tmp = path(".tmp-out"), dst = path("out");
        HadoopFiles.write(fs, tmp, dst, "one".getBytes(StandardCharsets.UTF_8));
        assertEquals("one", Files.readString(dir.resolve("out")));
        assertFalse(fs.exists(tmp));
        HadoopFiles.write(fs, tmp, dst, true, out -> out.write("three".getBytes(StandardCharsets.UTF_8)));
        assertEquals("three", Files.readString(dir.resolve("out")));
    }
}
