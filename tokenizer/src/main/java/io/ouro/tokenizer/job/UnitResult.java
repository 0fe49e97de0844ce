package io.ouro.tokenizer.job;

import java.io.Serializable;
import java.util.List;
import java.util.Map;

/** What one input unit (a file, or a Parquet partition) produced: its shards and its bad records. */
public record UnitResult(int unit, String input, List<ShardInfo> shards, long documents, long tokens, long bytesIn,
                         Map<String, Long> bad, Map<String, List<String>> samples, boolean skipped)
        implements Serializable {

    /** One shard as the manifest lists it (the unit marker keeps it for a resumed job). */
    public record ShardInfo(String path, long documents, long tokens, long bytes, String sha256, long indexOffset,
                            long crcKey) implements Serializable {
    }
}
