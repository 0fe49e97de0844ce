package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.backend.MemoryPlan;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.ChecksumFileSystem;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What the driver says about a run, all from the driver's thread: the run and plan, stage transitions,
 * one line per step as it happens (from rank 0's live lines, or from the segment's result when a line did
 * not arrive), each appended to {@code <run.out>/metrics/<start time>-<run id>.jsonl} (one JSON object per
 * step, see {@link StepMetrics#json}; one file per driver, so a resumed run adds a file) and shown in the
 * UI's gauges, one line per segment with where the time went
 * and who ran it, validations, data sources read through, and each segment job's description.
 * It keeps a bounded memory of the run, whatever its length: the last {@link StepWindow#CAP} steps and totals
 * over all of them, the last segments' task reports ({@link #SEGMENT_STEPS}) and the last {@link #VALIDATIONS}
 * validations; every step is in the metrics file.
 */
final class RunReporter implements AutoCloseable {

    /** The device rank 0 runs on, as its backend describes it (for the MFU). */
    private String device;
    private final TrainConfig cfg;
    private final String runId;
    private final java.util.function.Consumer<String> log;
    private final Path metricsFile;
    private final FSDataOutputStream metrics;
    /**
     * The segments' task reports kept while the steps they carry stay within this (the newest always kept): the
     * segments of the step window, to see who ran the steps still in memory.
     */
    static final int SEGMENT_STEPS = StepWindow.CAP;
    /** The validations kept: at the recipes' {@code every_steps: 2000}, two million steps' worth. */
    static final int VALIDATIONS = 1_000;

    private final StepWindow steps = new StepWindow();
    private final ArrayDeque<SegmentResult[]> segments = new ArrayDeque<>();
    private long segmentSteps;
    private final ArrayDeque<double[][]> validations = new ArrayDeque<>();
    private final Map<String, Long> epochsLogged = new HashMap<>();
    private Stage stage;
    private String attempt;
    private long first, last, lastLogged = -1;
    private String lossText = "–", speedText = "–";

    /** Writes a metrics file when {@code run.out} is set. */
    RunReporter(TrainConfig cfg, String runId, java.util.function.Consumer<String> log, Configuration conf) {
        this.cfg = cfg;
        this.runId = runId;
        this.log = log;
        this.metricsFile = cfg.run().out().isEmpty() ? null : new Path(new Path(cfg.run().out(), "metrics"),
                String.format(Locale.ROOT, "%tY%<tm%<td-%<tH%<tM%<tS-%s.jsonl", System.currentTimeMillis(), runId));
        this.metrics = metricsFile == null ? null : openMetrics(metricsFile, conf);
    }

    /**
     * A new file per driver: appending to the file of a driver that was killed would need HDFS lease
     * recovery and an append pipeline, which small clusters cannot always give.
     */
    private static FSDataOutputStream openMetrics(Path p, Configuration conf) {
        try {
            FileSystem fs = p.getFileSystem(conf);
            // on the local filesystem, without its checksum wrapper, so that each flushed line is visible at once
            FileSystem raw = fs instanceof ChecksumFileSystem c ? c.getRawFileSystem() : fs;
            return raw.create(p, false);
        } catch (IOException e) {
            throw new UncheckedIOException("creating the metrics file " + p, e);
        }
    }

    void log(String line) {
        log.accept(line);
    }

    void runStarts(long totalSteps) {
        log.accept(String.format(Locale.ROOT, "run %s: %d workers, %d steps in %d stage(s), device %s, config hash %s",
                runId, cfg.train().workers(), totalSteps, cfg.stages().size(), cfg.train().device(), cfg.hash()));
        for (String line : Plan.describe(cfg)) {
            log.accept("plan: " + line);
        }
        if (metrics != null) {
            log.accept("metrics: one JSON line per step in " + metricsFile);
        }
    }

    /** The attempt {@code attempt} of segment {@code [first, last)} starts; returns its job description. */
    String segmentStarts(long first, long last, String attempt) {
        Stage st = cfg.stageAt(first);
        if (stage == null || stage.index() != st.index()) {
            Stage prev = first > 0 ? cfg.stageAt(first - 1) : null;
            if (prev == null || prev.index() != st.index() || first == st.firstStep()) {
                log.accept(Plan.transition(prev == null || prev.index() == st.index() ? null : prev, st));
            }
        }
        this.stage = st;
        this.attempt = attempt;
        steps.segmentStarts(first);
        this.first = first;
        this.last = last;
        ProgressPlugin.show(st.name(), first, Double.NaN, 0, first, last - 1, 0, Double.NaN, Double.NaN);
        return String.format(Locale.ROOT, "stage %s · steps %d–%d · loss %s · %s tok/s", st.name(), first, last - 1,
                lossText, speedText);
    }

    /**
     * Lines rank 0 sent while the segment runs; those of other attempts (a failed one's stragglers) are dropped.
     * Returns the steps of this attempt among them.
     */
    List<StepMetrics> live(List<String> lines) {
        List<StepMetrics> ours = new ArrayList<>();
        for (String line : lines) {
            Map<String, String> fields = new HashMap<>();
            StepMetrics m = StepMetrics.parse(line, fields);
            if (attempt.equals(fields.get("attempt"))) {
                device = fields.getOrDefault("device", device);
                step(m);
                ours.add(m);
            }
        }
        return ours;
    }

    private void step(StepMetrics m) {
        if (m.step() <= lastLogged) {
            return;
        }
        lastLogged = m.step();
        steps.add(m);
        double peak = Plan.mfuPeakGflops(cfg.train(), device);
        log.accept(m.line(stage.name(), peak, MemoryPlan.modelFlopsPerToken(stage.model(), stage.seqLen())));
        ProgressPlugin.show(stage.name(), m.step(), m.loss(), m.tokens() / (m.wallMs() / 1e3), first, last - 1,
                m.exchangeMs(), m.hidden(), m.gatherHidden());
        if (metrics != null) {
            try {
                metrics.write((m.json(stage.name(), Map.of("run_id", runId, "time_ms", System.currentTimeMillis()))
                        + "\n").getBytes(StandardCharsets.UTF_8));
                metrics.hflush();
            } catch (IOException e) {
                throw new UncheckedIOException("appending to " + metricsFile, e);
            }
        }
    }

    /** The segment ended with {@code res} after {@code segMs}: the steps not yet logged, then its summary. */
    void segmentDone(SegmentResult[] res, double segMs) {
        SegmentResult r0 = rank0(res);
        segments.addLast(res);
        segmentSteps += r0.steps().size();
        while (segments.size() > 1 && segmentSteps > SEGMENT_STEPS) {
            segmentSteps -= rank0(segments.removeFirst()).steps().size();
        }
        device = r0.device();
        r0.steps().forEach(this::step);
        double ms = 0, overhead = 0;
        long tok = 0;
        StringBuilder who = new StringBuilder();
        for (SegmentResult r : res) {
            who.append(String.format(Locale.ROOT, " [rank %d: executor %s pid %d %s, state %s, sent %.1f MB]",
                    r.rank(), r.executor(), r.pid(), r.host(), r.stateSource(), r.bytesSent() / 1e6));
        }
        for (StepMetrics m : r0.steps()) {
            ms += m.wallMs();
            overhead += m.overheadMs();
            tok += m.tokens();
        }
        int n = r0.steps().size();
        // what the steps did not account for: launching the barrier stage, joining the ring, snapshots, results
        double launch = Math.max(0, segMs - ms);
        log.accept(String.format(Locale.ROOT, "segment %d–%d: %.0f ms, of which steps %.0f ms; per step"
                        + " orchestration + data wait %.1f ms (%.2f%% of a step, stage launch included)%s%s",
                first, last - 1, segMs, ms, (overhead + launch) / n, 100 * (overhead + launch) / segMs,
                r0.checkpoint() == null ? "" : "; checkpoint being written to " + r0.checkpoint(), who));
        logEpochs();
        Validation v = r0.validation();
        if (v != null) {
            log.accept(String.format(Locale.ROOT, "validation after step %d (stage %s, %d held-out tokens): CE per"
                            + " loop step %s, mean exit %s", last - 1, stage.name(), v.tokens(), fmt(v.ce(), "%.4f"),
                    fmt(v.exit(), "%.3f")));
            if (validations.size() == VALIDATIONS) {
                validations.removeFirst();
            }
            validations.addLast(new double[][] {{last}, v.ce(), v.exit()});
        }
        lossText = String.format(Locale.ROOT, "%.2f", r0.steps().get(n - 1).loss());
        double tokS = tok / (ms / 1e3);
        speedText = tokS >= 1000 ? String.format(Locale.ROOT, "%.1fk", tokS / 1e3) : String.format(Locale.ROOT, "%.0f", tokS);
    }

    /** The run goes back to {@code step}: what was reported after it is taken back. */
    void rewind(long step) {
        steps.rewind(step);
        lastLogged = step - 1;
        stage = null;
    }

    void runDone(long stepCount, long tokens, long skipped, String lastCheckpoint) {
        log.accept(String.format(Locale.ROOT, "run %s done: %d steps, %d tokens, %d skipped updates (accumulators;"
                        + " counted on every rank)%s", runId, stepCount, tokens, skipped,
                lastCheckpoint == null ? "" : "; last checkpoint " + lastCheckpoint));
    }

    /** The last {@link StepWindow#CAP} steps, oldest first. */
    List<StepMetrics> steps() {
        return steps.recent();
    }

    RunTotals totals() {
        return steps.totals();
    }

    /** How many steps, segment starts, segments and validations the reporter holds. */
    int held() {
        return steps.held() + segments.size() + validations.size();
    }

    List<SegmentResult[]> segments() {
        return new ArrayList<>(segments);
    }

    List<double[][]> validations() {
        return new ArrayList<>(validations);
    }

    static SegmentResult rank0(SegmentResult[] res) {
        for (SegmentResult r : res) {
            if (r.rank() == 0) {
                return r;
            }
        }
        throw new IllegalStateException("a segment returned no result from rank 0");
    }

    /**
     * Logs when a source of the stage's mixture has been read through and starts a new epoch (in a new
     * order), or would have with {@code on_exhausted: stop} (the tasks then stop the run).
     */
    private void logEpochs() {
        var smp = DataSources.sampler(cfg, stage);
        long consumed = DataSources.firstSample(cfg, stage, last);
        for (int j = 0; j < smp.sources(); j++) {
            if (stage.mixture().getOrDefault(smp.name(j), 0.0) <= 0) {
                continue;
            }
            long used = smp.count(j, consumed);
            long epoch = used / smp.samples(j);
            String key = stage.name() + "/" + smp.name(j);
            if (epoch > epochsLogged.getOrDefault(key, 0L)) {
                epochsLogged.put(key, epoch);
                log.accept(String.format(Locale.ROOT, "data: source %s (stage %s) has been read %d time(s) through"
                                + " (%d of its %d sequences of %d tokens used); on_exhausted: %s", smp.name(j), stage.name(),
                        epoch, used, smp.samples(j), stage.seqLen(), stage.onExhausted().equals("wrap")
                                ? "wrap, a new epoch in a new order" : "stop"));
            }
        }
    }

    static String fmt(double[] v, String f) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < v.length; i++) {
            b.append(i == 0 ? "" : " ").append(String.format(Locale.ROOT, f, v[i]));
        }
        return b.append(']').toString();
    }

    @Override
    public void close() {
        if (metrics != null) {
            try {
                metrics.close();
            } catch (IOException e) {
                log.accept("warning: closing the metrics file: " + e.getMessage());
            }
        }
    }
}
