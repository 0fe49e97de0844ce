package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.config.TrainSettings;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.util.List;
import java.util.function.Function;

/**
 * The faults of {@code train.inject} (tests and the chaos bench), fired by rank W-1 in the executor. Each fires once
 * per run output: the rank that fires it creates {@code <run.out>/inject/<kind>-<step>} first, so a re-run of the
 * segment, a resumed driver or another executor JVM sees the marker and goes on.
 */
final class InjectedFaults {

    enum Kind {
        TASK_FAILURE("task-failure", TrainSettings.Inject::taskFailureAtSteps),
        HANG("hang", TrainSettings.Inject::hangAtSteps),
        CHECKPOINT_WRITE_FAILURE("checkpoint-write-failure", TrainSettings.Inject::checkpointWriteFailureAtSteps);

        final String marker;
        final Function<TrainSettings.Inject, List<Long>> steps;

        Kind(String marker, Function<TrainSettings.Inject, List<Long>> steps) {
            this.marker = marker;
            this.steps = steps;
        }
    }

    /** How long an injected hang lasts when nothing cancels its task; far beyond any watchdog bound. */
    private static final long HANG_MAX_MS = 3_600_000L;

    private InjectedFaults() {
    }

    /** Whether {@code kind} fires now, at {@code step} on {@code rank} of {@code world}; true only the first time. */
    static boolean fires(TrainConfig cfg, Kind kind, long step, int rank, int world) throws IOException {
        if (rank != world - 1 || !kind.steps.apply(cfg.train().inject()).contains(step)) {
            return false;
        }
        Path marker = new Path(cfg.run().out(), "inject/" + kind.marker + "-" + step);
        FileSystem fs = marker.getFileSystem(new Configuration());
        boolean first = fs.createNewFile(marker);
        if (first) {
            System.err.println("ouro: injecting " + kind.marker + " at step " + step + " on rank " + rank
                    + " (train.inject; marker " + marker + ")");
        }
        return first;
    }

    /** Before step {@code step}: throws (task failure) or sleeps until the task is cancelled (hang), when due. */
    static void beforeStep(TrainConfig cfg, long step, int rank, int world) throws IOException {
        if (fires(cfg, Kind.TASK_FAILURE, step, rank, world)) {
            throw new IllegalStateException("injected task failure at step " + step
                    + " (train.inject.task_failure_at_steps)");
        }
        if (fires(cfg, Kind.HANG, step, rank, world)) {
            try {
                Thread.sleep(HANG_MAX_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("injected hang at step " + step
                        + " (train.inject.hang_at_steps) ended by the task's cancellation", e);
            }
            throw new IllegalStateException("injected hang at step " + step + " was not cancelled within "
                    + HANG_MAX_MS / 1000 + " s");
        }
    }
}
