package io.ouro.tokenizer.fs;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/** A directory of named files on any Hadoop file system (local, HDFS, object stores). */
public class HadoopDir {

    private final Path root;
    private final FileSystem fs;

    public HadoopDir(String dir, Configuration conf) throws IOException {
        this.root = new Path(dir);
        this.fs = root.getFileSystem(conf);
    }

    public InputStream open(String name) throws IOException {
        return fs.open(new Path(root, name));
    }

    public boolean exists(String name) throws IOException {
        return fs.exists(new Path(root, name));
    }

    /** A new file {@code name}, replacing one that exists; no {@code .crc} side file on the local file system. */
    public OutputStream create(String name) throws IOException {
        FileSystem target = fs instanceof org.apache.hadoop.fs.ChecksumFileSystem c ? c.getRawFileSystem() : fs;
        return target.create(new Path(root, name), true);
    }

    public String describe(String name) {
        return new Path(root, name).toString();
    }
}
