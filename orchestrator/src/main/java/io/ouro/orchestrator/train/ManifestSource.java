package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.ConfigException;
import io.ouro.tokenizer.shard.ShardException;
import io.ouro.tokenizer.shard.ShardStream;
import io.ouro.worker.data.TokenSource;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The token stream of a tokenization job's shards, in manifest order, read through the Hadoop FileSystem
 * API ({@code hdfs://}, {@code file://}, ...) by {@link ShardStream}: each window costs positioned reads
 * of the record batches it touches, each checked against its CRC32C; nothing else is read or held.
 */
public final class ManifestSource implements TokenSource {

    private final ShardStream stream;

    ManifestSource(ShardStream stream) {
        this.stream = stream;
    }

    public static TokenSource open(String manifest, int vocab) {
        ShardStream s;
        try {
            Path p = new Path(manifest);
            FileSystem fs = p.getFileSystem(new Configuration());
            s = ShardStream.open(fs, p);
        } catch (ShardException e) {
            throw new ConfigException(e.getMessage());
        } catch (IOException e) {
            throw new UncheckedIOException(manifest + ": cannot read the manifest: " + e.getMessage(), e);
        }
        return checked(new ManifestSource(s), manifest, vocab);
    }

    static ManifestSource checked(ManifestSource src, String manifest, int vocab) {
        int v = src.stream.manifest().vocabSize();
        if (v > vocab) {
            throw new ConfigException(manifest + ": tokenized with a vocabulary of " + v + " ids, but the model has "
                    + vocab + " (model.vocab)");
        }
        return src;
    }

    @Override
    public int eosId() {
        return stream.manifest().eosId();
    }

    @Override
    public long tokens() {
        return stream.tokens();
    }

    @Override
    public void read(long start, int[] dst, int off, int len) {
        try {
            stream.read(start, dst, off, len);
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    @Override
    public boolean concurrentReads() {
        return true;
    }

    @Override
    public String describe() {
        return stream.name() + " (" + stream.manifest().shards().size() + " shards, " + tokens() + " tokens)";
    }

    @Override
    public void close() {
        try {
            stream.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
