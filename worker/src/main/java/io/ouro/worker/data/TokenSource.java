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

    /** Where the tokens come from, for logs and errors. */
    String describe();

    @Override
    default void close() {
    }
}
