package io.ouro.tokenizer.job;

import io.ouro.tokenizer.cli.Args;
import io.ouro.tokenizer.shard.Manifest;
import io.ouro.tokenizer.shard.ShardFormat;
import io.ouro.tokenizer.shard.Shards;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;

import java.util.Locale;

/**
 * {@code ouro reshard --manifest URI --output URI [--batch-tokens N]}: rewrites the shards of a manifest
 * (those of earlier jobs, {@code token-shard-1}, which training refuses) into the current format with the
 * same token stream and documents, and writes a new manifest under the output.
 */
public final class ReshardApp {

    private ReshardApp() {
    }

    public static void main(String[] args) throws Exception {
        Args a = Args.orExit(args, "ouro reshard --manifest URI --output URI [--batch-tokens N]");
        Path in = new Path(a.required("manifest")), out = new Path(a.required("output"));
        int batch = a.integer("batch-tokens", ShardFormat.DEFAULT_BATCH_TOKENS);
        Configuration conf = new Configuration();
        Manifest m = Shards.rewrite(in.getFileSystem(conf), in, out.getFileSystem(conf), out, batch, System.out::println);
        System.out.printf(Locale.ROOT, "reshard: %d shards, %,d tokens -> %s%n", m.shards().size(), m.tokens(),
                new Path(out, "manifest.json"));
    }
}
