package io.ouro.orchestrator.train;

import java.io.Serializable;
import java.util.List;

/**
 * What one worker task returns at the end of a segment: who it was, where its state came from, its
 * communication counters, rank 0's per-step metrics, the validation (null when none), where its
 * checkpoint shard is being written (null when none) and, when asked, the final parameters.
 */
public record SegmentResult(int rank, String executor, String host, long pid, String device, String stateSource,
                            long bytesSent, long payloadBytesSent, List<StepMetrics> steps, float[] parameters,
                            String checkpoint, Validation validation) implements Serializable {
}
