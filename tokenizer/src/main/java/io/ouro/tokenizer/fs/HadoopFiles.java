package io.ouro.tokenizer.fs;

import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * Write-to-temp-then-rename on any Hadoop file system, the one way the tokenizer job, the shards, the
 * checkpoints and the generators publish a file: a reader sees the whole file or none of it. The caller names
 * the temporary path (each format has its own: {@code _tmp/}, {@code .tmp-}, a leading dot), so that the
 * readers that skip temporaries keep skipping them.
 */
public final class HadoopFiles {

    private HadoopFiles() {
    }

    /** What writes a file's content. */
    @FunctionalInterface
    public interface Content {
        void writeTo(OutputStream out) throws IOException;
    }

    /**
     * Writes {@code content} under {@code tmp} and renames it to {@code dst}; {@code replace} deletes an existing
     * {@code dst} first (a Hadoop rename does not overwrite). When the content fails, the temporary file is deleted
     * and {@code dst} is left as it was.
     */
    public static void write(FileSystem fs, Path tmp, Path dst, boolean replace, Content content) throws IOException {
        writeTemp(fs, tmp, content);
        if (replace) {
            fs.delete(dst, false);
        }
        rename(fs, tmp, dst);
    }

    /** {@link #write} of a byte array that does not replace an existing {@code dst}. */
    public static void write(FileSystem fs, Path tmp, Path dst, byte[] bytes) throws IOException {
        write(fs, tmp, dst, false, out -> out.write(bytes));
    }

    /** Writes {@code content} to {@code tmp} (overwriting it); on failure deletes it and rethrows. */
    public static void writeTemp(FileSystem fs, Path tmp, Content content) throws IOException {
        try (FSDataOutputStream out = fs.create(tmp, true)) {
            content.writeTo(out);
        } catch (IOException | RuntimeException | Error e) {
            try {
                fs.delete(tmp, false);
            } catch (IOException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    /** Renames {@code from} to {@code to}, an error naming both when the file system refuses. */
    public static void rename(FileSystem fs, Path from, Path to) throws IOException {
        if (!fs.rename(from, to)) {
            throw new IOException("could not rename " + from + " to " + to);
        }
    }

    /**
     * Renames {@code tmp} to {@code dst}. When another attempt of the same work committed {@code dst} first
     * (a task of a killed job that is still running, or a speculative copy), its bytes must equal ours, since
     * the output is a function of the input: ours are dropped. Different bytes are an error.
     */
    public static void commit(FileSystem fs, Path tmp, Path dst) throws IOException {
        if (fs.rename(tmp, dst)) {
            return;
        }
        if (!fs.exists(dst)) {
            throw new IOException("could not rename " + tmp + " to " + dst);
        }
        if (!sameBytes(fs, tmp, dst)) {
            throw new IOException("could not rename " + tmp + " to " + dst + ": another attempt wrote " + dst
                    + " with other content (did the input change while the job ran?)");
        }
        fs.delete(tmp, false);
    }

    /** Whether two files hold the same bytes. */
    public static boolean sameBytes(FileSystem fs, Path a, Path b) throws IOException {
        if (fs.getFileStatus(a).getLen() != fs.getFileStatus(b).getLen()) {
            return false;
        }
        try (InputStream x = new java.io.BufferedInputStream(fs.open(a), 1 << 16);
             InputStream y = new java.io.BufferedInputStream(fs.open(b), 1 << 16)) {
            for (int c; (c = x.read()) >= 0; ) {
                if (c != y.read()) {
                    return false;
                }
            }
            return y.read() < 0;
        }
    }
}
