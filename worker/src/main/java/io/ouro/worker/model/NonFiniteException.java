package io.ouro.worker.model;

/** A NaN or infinity where a finite number is required; the message names where it was found. */
public class NonFiniteException extends ArithmeticException {
    private static final long serialVersionUID = 1L;

    public NonFiniteException(String message) {
        super(message);
    }
}
