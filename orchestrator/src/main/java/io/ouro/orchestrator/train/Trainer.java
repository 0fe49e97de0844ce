package io.ouro.orchestrator.train;

import io.ouro.orchestrator.checkpoint.CheckpointCommitter;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.List;
import java.util.function.Consumer;

/**
 * The driver's training loop. It follows the curriculum as segments (never across a checkpoint step, a
 * stage end or a batch-ramp change; cut short by the {@link CheckpointCadence} when checkpoints are due by
 * wall time), each run by the {@link SegmentRunner} as one Spark barrier stage;
 * a failed segment goes back to where the {@link RetryPolicy} says; the {@link RunReporter} says what
 * happens; checkpoints are committed by the {@link CheckpointCommitter} as their shards land.
 */
public final class Trainer {

    private final JavaSparkContext jsc;
    private final TrainConfig cfg;
    private final Consumer<String> log;

    public Trainer(JavaSparkContext jsc, TrainConfig cfg, Consumer<String> log) {
        this.jsc = jsc;
        this.cfg = cfg;
        this.log = log;
    }

    /**
     * What a run produced: the last {@link StepWindow#CAP} steps' metrics (rank 0; every step of a shorter run, and
     * every step of any run in the metrics file), totals over all steps, the last segments' task reports, final
     * parameters, the last validations.
     */
    public record Result(String runId, List<StepMetrics> steps, List<SegmentResult[]> segments, float[] parameters,
                         List<double[][]> validations, RunTotals totals) {
    }

    public Result run(boolean returnParameters) {
        return run(returnParameters, false);
    }

    /**
     * Runs the curriculum. With {@code resume}, starts after the newest valid checkpoint under
     * {@code run.out} (corrupt or half-written ones are skipped with a warning; one from another config is
     * an error). A failed segment (lost task or executor, peer timeout) is re-run from the newest valid
     * checkpoint, after a back-off, while {@code train.retry} allows (a budget that committed progress renews).
     */
    public Result run(boolean returnParameters, boolean resume) {
        String runId = cfg.run().name() + "-" + Long.toHexString(System.nanoTime());
        CheckpointStore store = store();
        try (RunReporter report = new RunReporter(cfg, runId, log, jsc.hadoopConfiguration())) {
            CheckpointCommitter committer = store == null ? null : new CheckpointCommitter(store, report::log);
            RetryPolicy retry = new RetryPolicy(cfg, store, committer, report::log);
            SegmentRunner runner = new SegmentRunner(jsc, cfg, runId, report, store, committer);
            report.runStarts(cfg.totalSteps());
            runner.waitForExecutors();
            long step = resume ? retry.resumeStep() : 0;
            long inject = cfg.train().injectFailureAtStep();
            float[] params = null;
            CheckpointCadence cadence = new CheckpointCadence(cfg);
            long lastFirst = step;
            while (step < cfg.totalSteps()) {
                CheckpointCadence.Segment seg = cadence.next(step);
                long last = seg.last();
                boolean wantParams = returnParameters && last == cfg.totalSteps();
                try {
                    SegmentRunner.Done done = runner.run(step, last, seg.checkpoint(), wantParams, inject);
                    report.segmentDone(done.results(), done.millis());
                    cadence.done(seg, done.millis());
                    params = wantParams ? RunReporter.rank0(done.results()).parameters() : params;
                    lastFirst = step;
                    step = last;
                } catch (SegmentRunner.Failed e) {
                    inject = -1; // an injected failure happens once
                    step = retry.afterFailure(step, last, e.getCause());
                    cadence.rewind();
                    report.rewind(step);
                }
                if (step == cfg.totalSteps() && committer != null && !finalCheckpointCommitted(committer)) {
                    // its shards failed to write or never landed: the run is not done until its last checkpoint is,
                    // so the last segment runs again from the newest checkpoint, as after any failed segment
                    step = retry.afterFailure(lastFirst, step, new IllegalStateException("the checkpoint of the last"
                            + " step " + step + " was not committed (see above)"));
                    cadence.rewind();
                    report.rewind(step);
                }
            }
            report.runDone(runner.steps.value(), runner.tokens.value(), runner.skipped.value(),
                    committer == null ? null : committer.lastCommitted());
            return new Result(runId, report.steps(), report.segments(), params, report.validations(),
                    report.totals());
        }
    }

    private boolean finalCheckpointCommitted(CheckpointCommitter committer) {
        return committer.await(Duration.ofSeconds(cfg.train().timeoutSeconds())).isEmpty()
                && committer.lastCommittedStep() == cfg.totalSteps();
    }

    private CheckpointStore store() {
        if (cfg.train().checkpointEvery() == 0) {
            return null;
        }
        try {
            return new CheckpointStore(cfg.run().out(), cfg.train().keepCheckpoints(), jsc.hadoopConfiguration());
        } catch (IOException e) {
            throw new UncheckedIOException("checkpoints under " + cfg.run().out(), e);
        }
    }
}
