package io.ouro.tokenizer.shard;

import java.io.IOException;

/** A shard or manifest that is not what the format says: the message names the file, batch and offset. */
public final class ShardException extends IOException {

    public ShardException(String message) {
        super(message);
    }

    public ShardException(String message, Throwable cause) {
        super(message, cause);
    }
}
