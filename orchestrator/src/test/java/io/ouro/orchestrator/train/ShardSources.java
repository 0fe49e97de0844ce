package io.ouro.orchestrator.train;

import io.ouro.tokenizer.shard.ShardStream;

/** For benchmarks outside this package: a {@link ManifestSource} over a stream already open (no vocabulary check). */
public final class ShardSources {

    private ShardSources() {
    }

    public static ManifestSource over(ShardStream stream) {
        return new ManifestSource(stream);
    }
}
