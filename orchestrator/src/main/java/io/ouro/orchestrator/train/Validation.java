package io.ouro.orchestrator.train;

import java.io.Serializable;

/** The held-out split evaluated after a segment: token-weighted CE and mean exit per loop step, over {@code tokens}. */
public record Validation(double[] ce, double[] exit, long tokens) implements Serializable {
}
