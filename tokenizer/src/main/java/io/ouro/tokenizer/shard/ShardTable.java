package io.ouro.tokenizer.shard;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * The manifest's shards, one column per field (about 100 bytes a shard in memory, so that a manifest of
 * millions of shards loads into little heap), with each shard's first token in the source's stream.
 */
public final class ShardTable {

    private int n;
    private byte[] names = new byte[1024];
    private int[] nameEnds = new int[16];
    private long[] documents = new long[16], tokens = new long[16], bytes = new long[16], indexOffsets = new long[16],
            crcKeys = new long[16], starts = new long[17];
    private byte[] sha = new byte[16 * 32];

    /** One shard as the manifest lists it. */
    public record Entry(String path, long documents, long tokens, long bytes, String sha256, long indexOffset,
                        long crcKey) {
    }

    public void add(Entry e) {
        if (n == documents.length) {
            int c = n * 2;
            nameEnds = Arrays.copyOf(nameEnds, c);
            documents = Arrays.copyOf(documents, c);
            tokens = Arrays.copyOf(tokens, c);
            bytes = Arrays.copyOf(bytes, c);
            indexOffsets = Arrays.copyOf(indexOffsets, c);
            crcKeys = Arrays.copyOf(crcKeys, c);
            starts = Arrays.copyOf(starts, c + 1);
            sha = Arrays.copyOf(sha, c * 32);
        }
        byte[] p = e.path().getBytes(StandardCharsets.UTF_8);
        int from = n == 0 ? 0 : nameEnds[n - 1];
        if (from + p.length > names.length) {
            names = Arrays.copyOf(names, Math.max(names.length * 2, from + p.length));
        }
        System.arraycopy(p, 0, names, from, p.length);
        nameEnds[n] = from + p.length;
        documents[n] = e.documents();
        tokens[n] = e.tokens();
        bytes[n] = e.bytes();
        indexOffsets[n] = e.indexOffset();
        crcKeys[n] = e.crcKey();
        if (e.sha256() != null && !e.sha256().isEmpty()) {
            System.arraycopy(HexFormat.of().parseHex(e.sha256()), 0, sha, n * 32, 32);
        }
        starts[n + 1] = starts[n] + e.tokens();
        n++;
    }

    public int size() {
        return n;
    }

    public Entry get(int i) {
        return new Entry(path(i), documents[i], tokens[i], bytes[i], HexFormat.of().formatHex(sha, i * 32, i * 32 + 32),
                indexOffsets[i], crcKeys[i]);
    }

    public String path(int i) {
        int from = i == 0 ? 0 : nameEnds[i - 1];
        return new String(names, from, nameEnds[i] - from, StandardCharsets.UTF_8);
    }

    public long tokens(int i) {
        return tokens[i];
    }

    public long indexOffset(int i) {
        return indexOffsets[i];
    }

    public long crcKey(int i) {
        return crcKeys[i];
    }

    /** The position of shard i's first token in the stream of all shards. */
    public long start(int i) {
        return starts[i];
    }

    public long totalTokens() {
        return starts[n];
    }

    public long totalDocuments() {
        long d = 0;
        for (int i = 0; i < n; i++) {
            d += documents[i];
        }
        return d;
    }

    /** The shard holding token {@code t} of the stream (skipping empty shards). */
    public int shardOf(long t) {
        int s = Arrays.binarySearch(starts, 0, n + 1, t);
        s = s >= 0 ? s : -s - 2;
        while (s < n - 1 && starts[s + 1] == starts[s]) {
            s++;
        }
        return s;
    }
}
