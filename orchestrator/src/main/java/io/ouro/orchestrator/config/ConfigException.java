package io.ouro.orchestrator.config;

/** A config that cannot be used; the message names the file, the field and what was expected. */
public final class ConfigException extends RuntimeException {
    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
