package io.ouro.worker.data;

import java.util.Objects;

/** A token stream held in memory (tests, demos, small corpora). */
public final class ArrayTokenSource implements TokenSource {

    private final int[] tokens;
    private final String name;
    private final int eos;

    public ArrayTokenSource(int[] tokens, String name) {
        this(tokens, name, -1);
    }

    public ArrayTokenSource(int[] tokens, String name, int eos) {
        this.tokens = Objects.requireNonNull(tokens, "tokens");
        this.name = name;
        this.eos = eos;
    }

    @Override
    public int eosId() {
        return eos;
    }

    @Override
    public long tokens() {
        return tokens.length;
    }

    @Override
    public void read(long start, int[] dst, int off, int len) {
        if (start < 0 || len < 0 || start + len > tokens.length) {
            throw new IndexOutOfBoundsException(name + ": tokens [" + start + ", " + (start + len)
                    + ") outside [0, " + tokens.length + ")");
        }
        System.arraycopy(tokens, (int) start, dst, off, len);
    }

    @Override
    public String describe() {
        return name + " (" + tokens.length + " tokens in memory)";
    }
}
