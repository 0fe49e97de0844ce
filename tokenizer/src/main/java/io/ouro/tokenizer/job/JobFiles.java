package io.ouro.tokenizer.job;

import io.ouro.tokenizer.fs.HadoopFiles;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.util.List;

/** The job's file operations on any Hadoop FileSystem: listing the input, reading a file, replacing one by rename. */
final class JobFiles {

    private JobFiles() {
    }

    /** The files at {@code p}, recursively, skipping names that start with {@code _} or {@code .}. */
    static void list(FileSystem fs, Path p, List<String> out) throws IOException {
        FileStatus st = fs.getFileStatus(p);
        if (st.isFile()) {
            out.add(st.getPath().toString());
            return;
        }
        for (FileStatus c : fs.listStatus(p)) {
            String n = c.getPath().getName();
            if (n.startsWith("_") || n.startsWith(".")) {
                continue;
            }
            if (c.isDirectory()) {
                list(fs, c.getPath(), out);
            } else {
                out.add(c.getPath().toString());
            }
        }
    }

    static byte[] readAll(Path p, Configuration conf) throws IOException {
        try (InputStream in = p.getFileSystem(conf).open(p)) {
            return in.readAllBytes();
        }
    }

    /** Writes {@code content} under {@code _tmp/} beside {@code dst}, then renames it over {@code dst}. */
    static void writeAtomically(FileSystem fs, Path dst, byte[] content) throws IOException {
        Path tmp = new Path(dst.getParent(), "_tmp/" + dst.getName() + "." + Long.toHexString(System.nanoTime()));
        HadoopFiles.writeTemp(fs, tmp, out -> out.write(content));
        if (fs.exists(dst)) {
            fs.delete(dst, false);
        }
        HadoopFiles.commit(fs, tmp, dst);
    }
}
