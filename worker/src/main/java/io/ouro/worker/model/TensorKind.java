package io.ouro.worker.model;

/** What a parameter tensor is, which decides its initialisation and, by default, its weight decay. */
public enum TensorKind {
    EMBEDDING, LINEAR, NORM, BIAS
}
