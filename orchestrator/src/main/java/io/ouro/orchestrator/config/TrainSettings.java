package io.ouro.orchestrator.config;

import io.ouro.worker.comm.WireDtype;
import io.ouro.worker.model.MatmulPrecision;

import java.io.Serializable;
import java.util.List;

/** Settings of the whole run (not per stage): the {@code train} section. */
public record TrainSettings(int workers, String device, int segmentSteps, double clip, double peakGflops, int timeoutSeconds,
                    long checkpointEvery, int keepCheckpoints, Recovery recovery, long injectFailureAtStep,
                    Spike spike, long injectNonFiniteAtStep, Validation validation, double deviceMemoryGib,
                    long maxBufferMib, boolean shardOptimizer, int ringConnections, int bucketMib,
                    boolean bf16Stash, MatmulPrecision matmul, WireDtype exchangeDtype, String exchangeInterface,
                    Watchdog watchdog, Inject inject)
        implements Serializable {

    TrainSettings withCheckpointEvery(long every) {
        return new TrainSettings(workers, device, segmentSteps, clip, peakGflops, timeoutSeconds, every, keepCheckpoints,
                recovery, injectFailureAtStep, spike, injectNonFiniteAtStep, validation, deviceMemoryGib,
                maxBufferMib, shardOptimizer, ringConnections, bucketMib, bf16Stash, matmul, exchangeDtype, exchangeInterface,
                watchdog, inject);
    }

    /** The largest gradient bucket of the exchange, in floats. */
    public int bucketFloats() {
        return (int) Math.min(Integer.MAX_VALUE - 8, (long) bucketMib * (1L << 20) / 4);
    }

    /** The device memory the plan sizes each worker for, in bytes. */
    public long deviceBytes() {
        return (long) (deviceMemoryGib * (1L << 30));
    }

    /** The largest device buffer in floats (0: the device's and a Java array's limit). */
    public long bufferLimitFloats() {
        return maxBufferMib * (1L << 20) / 4;
    }


    /**
     * Validation: a deterministic held-out split of documents ({@code holdout} of them, chosen by a hash of
     * the seed and the document's index), evaluated every {@code everySteps} steps on {@code batches}
     * global batches; {@code everySteps} 0 turns it off.
     */
    public record Validation(long everySteps, int batches, double holdout) implements Serializable {
    }

    /**
     * Spike skipping: an update is skipped when loss or gradient norm exceeds mean + sigma sd of the window;
     * after {@code maxConsecutive} skips in a row the next step is accepted as a new level.
     */
    public record Spike(int window, int minHistory, double sigma, int maxConsecutive) implements Serializable {
    }

    /**
     * How a run rides out lost nodes: at most {@code maxFailures} failed segments per {@code windowSteps} steps of
     * committed progress (a sliding window: progress renews the budget), a back-off before each retry that doubles
     * from {@code backoffSeconds} up to {@code backoffMaxSeconds} and starts again after progress, and checkpoints
     * every {@code checkpointEveryMinutes} of wall time as well as every {@code checkpoint_every} steps (0: off), and
     * {@code spareExecutors} executors requested beyond W ({@code ouro plan --spark-conf}), so that a segment re-run
     * after a lost node finds W slots among those already registered.
     */
    public record Recovery(int maxFailures, long windowSteps, double backoffSeconds, double backoffMaxSeconds,
                           double checkpointEveryMinutes, int spareExecutors) implements Serializable {
    }

    /**
     * The driver's step-progress watchdog ({@code train.watchdog}): a segment whose rank 0 reports no step within
     * the measured step time plus {@code slackSeconds} is cancelled and counts as a failed segment; before a
     * segment's first step (stage launch, ring join, state load, kernel compiles) and after its last one
     * (validation, checkpoint snapshot) the bound is {@code firstStepSeconds} instead.
     */
    public record Watchdog(double slackSeconds, double firstStepSeconds) implements Serializable {
    }

    /**
     * Faults injected for tests and the chaos bench ({@code train.inject}), each at the steps listed: rank W-1 throws
     * at the start of the step ({@code task_failure_at_steps}), sleeps there until its task is cancelled
     * ({@code hang_at_steps}), or fails writing its shard of the checkpoint of that step
     * ({@code checkpoint_write_failure_at_steps}). Each fault fires once per run output, whatever the retries and
     * resumes: the rank that fires it first creates a marker under {@code <run.out>/inject/}. Empty by default; not
     * part of the run identity (a run with faults must end as the same run without them).
     */
    public record Inject(List<Long> taskFailureAtSteps, List<Long> hangAtSteps,
                         List<Long> checkpointWriteFailureAtSteps) implements Serializable {

        public static final Inject NONE = new Inject(List.of(), List.of(), List.of());

        public Inject {
            taskFailureAtSteps = List.copyOf(taskFailureAtSteps);
            hangAtSteps = List.copyOf(hangAtSteps);
            checkpointWriteFailureAtSteps = List.copyOf(checkpointWriteFailureAtSteps);
        }

        public boolean any() {
            return !taskFailureAtSteps.isEmpty() || !hangAtSteps.isEmpty() || !checkpointWriteFailureAtSteps.isEmpty();
        }
    }
}
