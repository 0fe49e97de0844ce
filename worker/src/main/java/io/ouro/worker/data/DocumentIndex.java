package io.ouro.worker.data;

import java.util.Arrays;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * Where the documents of a token stream start and end: the stream is the documents with the source's EOS id
 * between them ({@link TokenSource}), so one pass over it finds them. Empty documents (two EOS in a row) are
 * left out. It costs one read of the whole source and 8 bytes per document; it is built once per source and
 * JVM ({@link #of}) and serves the aligned sampling mode ({@link Sampler.Layout#aligned()}).
 */
public final class DocumentIndex {

    private static final Map<TokenSource, DocumentIndex> BUILT = new WeakHashMap<>();

    private final long[] starts; // starts[i]: first token of document i; ends[i]: one past its last token
    private final long[] ends;

    private DocumentIndex(long[] starts, long[] ends) {
        this.starts = starts;
        this.ends = ends;
    }

    /** The index of {@code src}, built on first use and kept while the source is reachable. */
    public static synchronized DocumentIndex of(TokenSource src) {
        return BUILT.computeIfAbsent(src, DocumentIndex::build);
    }

    static DocumentIndex build(TokenSource src) {
        int eos = src.eosId();
        if (eos < 0) {
            throw new IllegalArgumentException(src.describe() + ": aligned sampling needs the id that ends each"
                    + " document, and this source does not say it (eosId -1)");
        }
        long n = src.tokens();
        long[] starts = new long[1024], ends = new long[1024];
        int docs = 0;
        int[] buf = new int[1 << 16];
        long begin = 0;
        for (long at = 0; at < n; at += buf.length) {
            int len = (int) Math.min(buf.length, n - at);
            src.read(at, buf, 0, len);
            for (int i = 0; i < len; i++) {
                if (buf[i] == eos) {
                    long end = at + i;
                    if (end > begin) {
                        if (docs == starts.length) {
                            starts = Arrays.copyOf(starts, docs * 2);
                            ends = Arrays.copyOf(ends, docs * 2);
                        }
                        starts[docs] = begin;
                        ends[docs++] = end;
                    }
                    begin = end + 1;
                }
            }
        }
        if (n > begin) {
            if (docs == starts.length) {
                starts = Arrays.copyOf(starts, docs + 1);
                ends = Arrays.copyOf(ends, docs + 1);
            }
            starts[docs] = begin;
            ends[docs++] = n;
        }
        return new DocumentIndex(Arrays.copyOf(starts, docs), Arrays.copyOf(ends, docs));
    }

    /** Number of (non-empty) documents. */
    public long documents() {
        return starts.length;
    }

    /** The first token of document {@code i}. */
    public long start(long i) {
        return starts[(int) i];
    }

    /** The number of tokens of document {@code i} (its EOS not counted). */
    public int length(long i) {
        return (int) Math.min(Integer.MAX_VALUE, ends[(int) i] - starts[(int) i]);
    }
}
