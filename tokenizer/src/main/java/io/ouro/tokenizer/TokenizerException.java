package io.ouro.tokenizer;

/** A tokenizer file that cannot be used; the message names the file and the JSON path. */
public final class TokenizerException extends RuntimeException {
    public TokenizerException(String message) {
        super(message);
    }

    public TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}
