package io.ouro.orchestrator.train;

import io.ouro.orchestrator.checkpoint.CheckpointCommitter;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.comm.RingAllReduce;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaFutureAction;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.rdd.RDD;
import org.apache.spark.util.LongAccumulator;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.IntStream;

/**
 * Runs one segment as a Spark barrier stage of W {@link SegmentTask}s, as a job with its own group and
 * description, and waits for it on the driver's thread while passing on rank 0's live step lines to the
 * {@link RunReporter} and committing the checkpoints whose shards have landed. Owns the accumulators
 * ({@code ouro tokens}, {@code ouro steps}, {@code ouro skipped updates}).
 */
final class SegmentRunner {

    /** A segment's job failed (a task, an executor, a peer timeout); the cause is Spark's error. */
    static final class Failed extends Exception {
        Failed(Throwable cause) {
            super(cause);
        }
    }

    /** What the watchdog gives a segment up for: no step within its bound. */
    static final class Hung extends RuntimeException {
        Hung(String reason) {
            super(reason);
        }
    }

    /** A segment's results and its wall time on the driver. */
    record Done(SegmentResult[] results, double millis) {
    }

    private static final long COMMIT_POLL_NANOS = 500_000_000L;
    /**
     * How much longer than the watchdog's step bound the ring waits for a peer: the driver, which sees the whole
     * segment, is the one that reports a hang; the ring's timeout is the executors' own backstop when the driver's
     * cancel does not reach them.
     */
    static final long PEER_MARGIN_MS = 10_000;

    private final JavaSparkContext jsc;
    private final TrainConfig cfg;
    private final String runId;
    private final byte[] secret = RingAllReduce.newSecret();
    private final RunReporter report;
    private final CheckpointStore store;
    private final CheckpointCommitter committer;
    final LongAccumulator tokens, steps, skipped;
    private final RDD<Integer> ranks;
    /** Null when rank 0's step lines do not reach the driver (no {@link ProgressPlugin} in spark.plugins). */
    private final StepWatchdog watchdog;

    /** {@code store} and {@code committer} are null when the run writes no checkpoints. */
    SegmentRunner(JavaSparkContext jsc, TrainConfig cfg, String runId, RunReporter report, CheckpointStore store,
                  CheckpointCommitter committer) {
        this.jsc = jsc;
        this.cfg = cfg;
        this.runId = runId;
        this.report = report;
        this.store = store;
        this.committer = committer;
        SparkContext sc = jsc.sc();
        tokens = sc.longAccumulator("ouro tokens");
        steps = sc.longAccumulator("ouro steps");
        skipped = sc.longAccumulator("ouro skipped updates");
        int w = cfg.train().workers();
        ranks = jsc.parallelize(IntStream.range(0, w).boxed().toList(), w).rdd();
        var wd = cfg.train().watchdog();
        if (sc.conf().get("spark.plugins", "").contains(ProgressPlugin.class.getName())) {
            watchdog = new StepWatchdog(wd, System::nanoTime);
            report.log(String.format(Locale.ROOT, "watchdog: a segment fails when rank 0 reports no step within the"
                    + " measured step time + %s s (train.watchdog.slack_s), or within %s s before its first step and"
                    + " after its last (train.watchdog.first_step_s); the ring's peer timeout follows",
                    Plan.num(wd.slackSeconds()), Plan.num(wd.firstStepSeconds())));
        } else {
            watchdog = null;
            report.log("warning: watchdog off: spark.plugins lacks " + ProgressPlugin.class.getName()
                    + ", so no step reaches the driver while a segment runs; a hung rank is noticed after train.timeout_s");
        }
    }

    /**
     * The ring's peer timeout for the next segment: {@code train.timeout_s}, or, once steps have been measured, the
     * watchdog's step bound plus {@link #PEER_MARGIN_MS} when that is shorter.
     */
    long peerTimeoutMillis() {
        long t = cfg.train().timeoutSeconds() * 1000L;
        double bound = watchdog == null ? Double.NaN : watchdog.stepBoundMs();
        return Double.isNaN(bound) ? t : Math.min(t, Math.round(bound) + PEER_MARGIN_MS);
    }

    /** Runs steps {@code [first, last)}, each rank writing its checkpoint shard at the end when {@code checkpoint}. */
    Done run(long first, long last, boolean checkpoint, boolean returnParameters, long injectFailureAt) throws Failed {
        SparkContext sc = jsc.sc();
        String attempt = Long.toHexString(System.nanoTime());
        String group = "ouro-" + runId + "-" + first;
        // cancelling interrupts the tasks, so that a rank waiting for a hung peer lets go of its slot
        sc.setJobGroup(group, report.segmentStarts(first, last, attempt), true);
        SegmentTask task = new SegmentTask(cfg, runId, cfg.stageAt(first).name(), secret, first, last, checkpoint,
                returnParameters, tokens, steps, injectFailureAt, skipped, attempt, peerTimeoutMillis());
        if (watchdog != null) {
            watchdog.segmentStarts(first, last);
        }
        ClassTag<SegmentResult> tag = ClassTag$.MODULE$.apply(SegmentResult.class);
        long s0 = System.nanoTime(), polled = s0;
        JavaFutureAction<List<SegmentResult>> job = new JavaRDD<>(ranks.barrier().mapPartitions(task, false, tag), tag)
                .collectAsync();
        try {
            while (true) {
                try {
                    List<SegmentResult> res = job.get(100, TimeUnit.MILLISECONDS);
                    report.live(ProgressPlugin.take());
                    if (committer != null && checkpoint) {
                        committer.expect(last, store.pendingDir(last, attempt), cfg.train().workers());
                    }
                    return new Done(res.toArray(new SegmentResult[0]), (System.nanoTime() - s0) / 1e6);
                } catch (TimeoutException e) {
                    for (StepMetrics m : report.live(ProgressPlugin.take())) {
                        if (watchdog != null) {
                            watchdog.stepReported(m.step(), m.wallMs());
                        }
                    }
                    String hung = watchdog == null ? null : watchdog.check();
                    if (hung != null) {
                        report.log(hung);
                        throw new Failed(new Hung(hung)); // the finally cancels the job group
                    }
                    if (committer != null && System.nanoTime() - polled > COMMIT_POLL_NANOS) {
                        committer.poll();
                        polled = System.nanoTime();
                    }
                } catch (ExecutionException e) {
                    throw new Failed(e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new Failed(e);
                }
            }
        } finally {
            if (!job.isDone()) {
                sc.cancelJobGroup(group);
            }
            sc.clearJobGroup();
        }
    }

    /**
     * On a cluster, waits until the executors can run W barrier tasks at once (a barrier stage submitted
     * earlier fails its slot check and retries every 15 s), within {@code train.timeout_s}.
     */
    void waitForExecutors() {
        if (jsc.sc().isLocal()) {
            return;
        }
        int w = cfg.train().workers();
        long deadline = System.nanoTime() + cfg.train().timeoutSeconds() * 1_000_000_000L;
        int cores = 0;
        while (System.nanoTime() < deadline) {
            cores = 0;
            for (var e : jsc.sc().statusTracker().getExecutorInfos()) {
                if (!e.host().isEmpty() && !"driver".equals(e.host()) && e.numRunningTasks() >= 0) {
                    cores++;
                }
            }
            cores -= 1; // the driver is listed too
            int perExecutor = jsc.sc().conf().getInt("spark.executor.cores", 1) / Math.max(1,
                    jsc.sc().conf().getInt("spark.task.cpus", 1));
            if (cores * perExecutor >= w) {
                report.log("cluster: " + cores + " executor(s) registered for " + w + " barrier tasks");
                return;
            }
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        report.log("warning: only " + cores + " executor(s) registered after " + cfg.train().timeoutSeconds()
                + " s; submitting anyway");
    }
}
