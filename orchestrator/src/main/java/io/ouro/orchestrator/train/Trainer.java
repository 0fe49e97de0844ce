package io.ouro.orchestrator.train;

import io.ouro.orchestrator.checkpoint.CheckpointCommitter;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.comm.RingAllReduce;
import io.ouro.worker.model.LoopConfig;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.rdd.RDD;
import org.apache.spark.util.LongAccumulator;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.stream.IntStream;

/**
 * The driver's training loop. It follows the curriculum stage by stage, cutting each stage into segments
 * (never across a checkpoint step, a stage end or a batch-ramp change) and running each segment as one
 * Spark barrier stage of W {@link SegmentTask}s, with a job group and a description per segment
 * ({@code stage 1a · steps 100–149 · loss 3.41 · 12.3k tok/s}, the figures from the segment before),
 * named accumulators for tokens and steps, one driver log line per step, and a log line for every
 * transition between stages.
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

    /** What a run produced: every step's metrics (rank 0), the segments' task reports, final parameters. */
    public record Result(String runId, List<StepMetrics> steps, List<SegmentResult[]> segments, float[] parameters,
                         List<double[][]> validations) {
    }

    static String fmt(double[] v, String f) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < v.length; i++) {
            b.append(i == 0 ? "" : " ").append(String.format(Locale.ROOT, f, v[i]));
        }
        return b.append(']').toString();
    }

    public Result run(boolean returnParameters) {
        return run(returnParameters, false);
    }

    /**
     * Runs the curriculum. With {@code resume}, starts after the newest valid checkpoint under
     * {@code run.out} (corrupt or half-written ones are skipped with a warning; one from another config is
     * an error). A failed segment (lost task or executor, peer timeout) is re-run from the newest valid
     * checkpoint, up to {@code train.max_attempts} times.
     */
    public Result run(boolean returnParameters, boolean resume) {
        SparkContext sc = jsc.sc();
        TrainConfig.Train t = cfg.train();
        String runId = cfg.run().name() + "-" + Long.toHexString(System.nanoTime());
        byte[] secret = RingAllReduce.newSecret();
        LongAccumulator tokens = sc.longAccumulator("ouro tokens");
        LongAccumulator steps = sc.longAccumulator("ouro steps");
        LongAccumulator skipped = sc.longAccumulator("ouro skipped updates");
        int w = t.workers();
        log.accept(String.format(Locale.ROOT, "run %s: %d workers, %d steps in %d stage(s), device %s, config hash %s",
                runId, w, cfg.totalSteps(), cfg.stages().size(), t.device(), cfg.hash()));
        for (String line : Plan.describe(cfg)) {
            log.accept("plan: " + line);
        }
        List<StepMetrics> all = new ArrayList<>();
        List<double[][]> validations = new ArrayList<>();
        java.util.Map<String, Long> epochsLogged = new java.util.HashMap<>();
        List<SegmentResult[]> segs = new ArrayList<>();
        float[] params = null;
        String lastCheckpoint = null;
        String lossText = "–", speedText = "–";
        ClassTag<SegmentResult> tag = ClassTag$.MODULE$.apply(SegmentResult.class);
        RDD<Integer> ranks = jsc.parallelize(IntStream.range(0, w).boxed().toList(), w).rdd();
        waitForExecutors(w);
        CheckpointStore store = store();
        CheckpointCommitter committer = store == null ? null : new CheckpointCommitter(store, log);
        long start = resume ? latestCheckpoint(store, Long.MAX_VALUE) : 0;
        if (resume) {
            log.accept(start == 0 ? "resume: no valid checkpoint under " + cfg.run().out() + ", starting at step 0"
                    : "resume: continuing after the checkpoint of step " + start);
        }
        int failures = 0;
        long inject = t.injectFailureAtStep();
        long next;
        TrainConfig.Stage current = null;
        for (long first = start; first < cfg.totalSteps(); first = next) {
            long last = cfg.segmentEnd(first);
            next = last;
            TrainConfig.Stage stage = cfg.stageAt(first);
            if (current == null || current.index() != stage.index()) {
                TrainConfig.Stage prev = first > 0 ? cfg.stageAt(first - 1) : null;
                if (prev == null || prev.index() != stage.index() || first == stage.firstStep()) {
                    log.accept(Plan.transition(prev == null || prev.index() == stage.index() ? null : prev, stage));
                }
                current = stage;
            }
            String desc = String.format(Locale.ROOT, "stage %s · steps %d–%d · loss %s · %s tok/s", stage.name(), first,
                    last - 1, lossText, speedText);
            sc.setJobGroup("ouro-" + runId + "-" + first, desc, false);
            boolean wantParams = returnParameters && last == cfg.totalSteps();
            String attempt = Long.toHexString(System.nanoTime());
            SegmentTask task = new SegmentTask(cfg, runId, stage.name(), secret, first, last, wantParams, tokens, steps,
                    inject, skipped, attempt);
            long s0 = System.nanoTime();
            SegmentResult[] res;
            try {
                res = (SegmentResult[]) ranks.barrier().mapPartitions(task, false, tag).collect();
            } catch (Exception e) { // SparkException is checked, but Scala throws it undeclared
                sc.clearJobGroup();
                failures++;
                Throwable root = e;
                while (root.getCause() != null && root.getCause() != root) {
                    root = root.getCause();
                }
                log.accept(String.format(Locale.ROOT, "segment %d–%d failed (attempt %d of %d): %s", first, last - 1,
                        failures, t.maxAttempts(), root.getMessage()));
                if (failures >= t.maxAttempts() || t.checkpointEvery() == 0) {
                    throw new IllegalStateException("segment " + first + "–" + (last - 1) + " failed "
                            + failures + " time(s); giving up", e);
                }
                inject = -1; // an injected failure happens once
                if (committer != null) {
                    committer.await(java.time.Duration.ofSeconds(t.timeoutSeconds()));
                }
                next = latestCheckpoint(store, first);
                long from = next;
                all.removeIf(m -> m.step() >= from);
                current = null;
                log.accept("re-running from step " + next + (next == 0 ? " (no checkpoint yet)" : " (checkpoint)"));
                continue;
            }
            double segMs = (System.nanoTime() - s0) / 1e6;
            sc.clearJobGroup();
            if (committer != null) {
                if (cfg.checkpointAt(last)) {
                    committer.expect(last, store.pendingDir(last, attempt), w);
                }
                committer.poll();
            }
            segs.add(res);
            SegmentResult r0 = null;
            for (SegmentResult r : res) {
                if (r.rank() == 0) {
                    r0 = r;
                }
                if (r.checkpoint() != null) {
                    lastCheckpoint = r.checkpoint();
                }
            }
            if (r0 == null) {
                throw new IllegalStateException("segment " + first + "–" + (last - 1) + ": no result from rank 0");
            }
            double fpt = flopsPerToken(stage.model());
            for (StepMetrics m : r0.steps()) {
                log.accept(m.line(stage.name(), t.peakGflops(), fpt));
                all.add(m);
            }
            StringBuilder who = new StringBuilder();
            for (SegmentResult r : res) {
                who.append(String.format(Locale.ROOT, " [rank %d: executor %s pid %d %s, state %s, sent %.1f MB]",
                        r.rank(), r.executor(), r.pid(), r.host(), r.stateSource(), r.bytesSent() / 1e6));
            }
            double ms = 0, overhead = 0;
            long tok = 0;
            for (StepMetrics m : r0.steps()) {
                ms += m.wallMs();
                overhead += m.overheadMs();
                tok += m.tokens();
            }
            int n = r0.steps().size();
            // what the steps did not account for: launching the barrier stage, joining the ring, results
            double launch = Math.max(0, segMs - ms);
            log.accept(String.format(Locale.ROOT, "segment %d–%d: %.0f ms, of which steps %.0f ms; per step"
                            + " orchestration + data wait %.1f ms (%.2f%% of a step, stage launch included)%s%s",
                    first, last - 1, segMs, ms, (overhead + launch) / n, 100 * (overhead + launch) / segMs,
                    r0.checkpoint() == null ? "" : "; checkpoint " + r0.checkpoint(), who));
            logEpochs(stage, last, epochsLogged);
            if (r0.validationCe() != null) {
                log.accept(String.format(Locale.ROOT, "validation after step %d (stage %s, %d held-out tokens): CE per"
                                + " loop step %s, mean exit %s", last - 1, stage.name(), r0.validationTokens(),
                        fmt(r0.validationCe(), "%.4f"), fmt(r0.validationExit(), "%.3f")));
                validations.add(new double[][] {{last}, r0.validationCe(), r0.validationExit()});
            }
            StepMetrics lastStep = r0.steps().get(n - 1);
            lossText = String.format(Locale.ROOT, "%.2f", lastStep.loss());
            double tokS = tok / (ms / 1e3);
            speedText = tokS >= 1000 ? String.format(Locale.ROOT, "%.1fk", tokS / 1e3)
                    : String.format(Locale.ROOT, "%.0f", tokS);
            if (wantParams) {
                params = r0.parameters();
            }
        }
        if (committer != null && !committer.await(java.time.Duration.ofSeconds(t.timeoutSeconds())).isEmpty()) {
            throw new IllegalStateException("run " + runId + ": the last checkpoint was not committed (see the warnings)");
        }
        log.accept(String.format(Locale.ROOT, "run %s done: %d steps, %d tokens, %d skipped updates (accumulators; counted"
                        + " on every rank)%s", runId, steps.value(), tokens.value(), skipped.value(), lastCheckpoint == null ? "" : "; last checkpoint " + lastCheckpoint));
        return new Result(runId, all, segs, params, validations);
    }

    /**
     * Logs when a source of the stage's mixture has been read through and starts a new epoch (in a new
     * order), or would have with {@code on_exhausted: stop} (the tasks then stop the run).
     */
    private void logEpochs(TrainConfig.Stage stage, long last, java.util.Map<String, Long> logged) {
        var smp = DataSources.sampler(cfg, stage);
        long consumed = DataSources.firstSample(cfg, stage, last);
        for (int j = 0; j < smp.sources(); j++) {
            if (stage.mixture().getOrDefault(smp.name(j), 0.0) <= 0) {
                continue;
            }
            long used = smp.count(j, consumed);
            long epoch = used / smp.samples(j);
            String key = stage.name() + "/" + smp.name(j);
            if (epoch > logged.getOrDefault(key, 0L)) {
                logged.put(key, epoch);
                log.accept(String.format(Locale.ROOT, "data: source %s (stage %s) has been read %d time(s) through"
                                + " (%d of its %d sequences of %d tokens used); on_exhausted: %s", smp.name(j), stage.name(),
                        epoch, used, smp.samples(j), stage.seqLen(), stage.onExhausted().equals("wrap")
                                ? "wrap, a new epoch in a new order" : "stop"));
            }
        }
    }

    /**
     * On a cluster, waits until the executors can run W barrier tasks at once (a barrier stage submitted
     * earlier fails its slot check and retries every 15 s), within {@code train.timeout_s}.
     */
    private void waitForExecutors(int w) {
        if (jsc.sc().isLocal()) {
            return;
        }
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
                log.accept("cluster: " + cores + " executor(s) registered for " + w + " barrier tasks");
                return;
            }
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        log.accept("warning: only " + cores + " executor(s) registered after " + cfg.train().timeoutSeconds()
                + " s; submitting anyway");
    }

    private CheckpointStore store() {
        if (cfg.train().checkpointEvery() == 0) {
            return null;
        }
        try {
            return new CheckpointStore(cfg.run().out(), cfg.train().keepCheckpoints(), jsc.hadoopConfiguration());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("checkpoints under " + cfg.run().out(), e);
        }
    }

    /** The newest valid checkpoint step at or before {@code atMost} (and the run's end), 0 if there is none. */
    private long latestCheckpoint(CheckpointStore store, long atMost) {
        if (store == null) {
            return 0;
        }
        try {
            return store.latestValid(Math.min(atMost, cfg.totalSteps()), cfg.hash(), m -> log.accept("warning: " + m))
                    .map(CheckpointStore.Info::step).orElse(0L);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("listing checkpoints under " + cfg.run().out(), e);
        }
    }

    /** Training FLOPs per token: 6 per weight per loop step for the layers, plus the head per step. */
    static double flopsPerToken(LoopConfig m) {
        long layer = 4L * m.hidden() * m.hidden() + 3L * m.hidden() * m.ffn();
        return 6.0 * (m.layers() * layer * m.steps() + (long) m.hidden() * m.vocab() * m.steps());
    }
}
