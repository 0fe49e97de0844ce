package io.ouro.worker.data;

/**
 * A token stream with random access: the concatenation of a corpus's documents (EOS between them), as
 * the tokenization job writes it into shards. The sampler cuts it into training sequences.
 */
public interface TokenSource extends AutoCloseable {

    /** Number of tokens in the stream. */
    long tokens();

    /** Copies tokens {@code [start, start + len)} into {@code dst[off..]}. */
    void read(long start, int[] dst, int off, int len);

    /** The id that ends each document in the stream, or -1 when unknown. */
    default int eosId() {
        return -1;
    }

    /**
     * True when a read waits on storage (positioned reads on a FileSystem): the sampler then reads a batch's
     * windows concurrently. In-memory sources read faster than a thread hand-off.
     */
    default boolean concurrentReads() {
        return false;
    }

    /** Where the tokens come from, for logs and errors. */
    String describe();

    @Override
    default void close() {
    }
}
