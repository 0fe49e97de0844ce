package io.ouro.orchestrator.hf;

import io.ouro.worker.hf.HfModelDir;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/** An HF model directory on any Hadoop file system (local, HDFS, object stores). */
public final class HadoopDir implements HfModelDir.Files {

    private final Path root;
    private final FileSystem fs;

    public HadoopDir(String dir, Configuration conf) throws IOException {
        this.root = new Path(dir);
        this.fs = root.getFileSystem(conf);
    }

    @Override
    public InputStream open(String name) throws IOException {
        return fs.open(new Path(root, name));
    }

    @Override
    public boolean exists(String name) throws IOException {
        return fs.exists(new Path(root, name));
    }

    @Override
    public OutputStream create(String name) throws IOException {
        // no .crc side files on the local file system: the directory is for HF tools
        FileSystem target = fs instanceof org.apache.hadoop.fs.ChecksumFileSystem c ? c.getRawFileSystem() : fs;
        return target.create(new Path(root, name), true);
    }

    @Override
    public String describe(String name) {
        return new Path(root, name).toString();
    }
}
