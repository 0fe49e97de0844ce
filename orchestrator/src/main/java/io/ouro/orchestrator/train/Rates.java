package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.ConfigException;
import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.opencl.DevicePeaks;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The device FLOP rates {@code ouro plan} projects step time and run length at, each labelled with where it comes
 * from: measured ({@code --rates FILE}, the {@code RESULT layer} line of {@code tests/bench.sh layer} or of
 * {@code deploy/gpu-check.sh}'s step stage), given ({@code --tflops X}), or, when neither, the assumed ones
 * ({@link #assumed()}). The projection is compute only: a step's FLOPs (the plan's, recomputation included) over the
 * rate; the gradient exchange, data loading and checkpoints are not in it.
 *
 * @param rates name of the path (what the rate is for) to the rate
 */
public record Rates(Map<String, Rate> rates) {

    /** One rate: device GFLOP/s per worker, and where it comes from ("assumed: ...", "measured ...", "given ..."). */
    public record Rate(double gflops, String label) {
    }

    /** The device whose data-sheet peaks the assumed rates are shares of (the recipes' 141 GiB device). */
    public static final String ASSUMED_DEVICE = "H200";
    /** The assumed shares of the peaks: the fp32 kernels (SIMT) and the tensor-core path ({@code bf16_tensor}). */
    public static final double ASSUMED_FP32_SHARE = 0.30, ASSUMED_TENSOR_SHARE = 0.40;

    /**
     * The rule when nothing was measured: the fp32 kernels at {@link #ASSUMED_FP32_SHARE} of an
     * {@link #ASSUMED_DEVICE}'s fp32 peak, the bf16 tensor-core path at {@link #ASSUMED_TENSOR_SHARE} of its dense bf16
     * peak ({@link DevicePeaks}).
     */
    public static Rates assumed() {
        Map<String, Rate> m = new LinkedHashMap<>();
        double fp32 = DevicePeaks.fp32Gflops(ASSUMED_DEVICE), bf16 = DevicePeaks.bf16TensorGflops(ASSUMED_DEVICE);
        m.put("fp32", new Rate(ASSUMED_FP32_SHARE * fp32, String.format(Locale.ROOT, "assumed: %.0f%% of an %s's fp32 "
                + "peak %.1f TFLOP/s", 100 * ASSUMED_FP32_SHARE, ASSUMED_DEVICE, fp32 / 1e3)));
        m.put("bf16 tensor cores", new Rate(ASSUMED_TENSOR_SHARE * bf16, String.format(Locale.ROOT, "assumed: %.0f%% of "
                + "an %s's dense bf16 peak %.1f TFLOP/s", 100 * ASSUMED_TENSOR_SHARE, ASSUMED_DEVICE, bf16 / 1e3)));
        return new Rates(m);
    }

    /** A rate given on the command line ({@code --tflops X}). */
    public static Rates given(double tflops) {
        if (!(tflops > 0) || Double.isInfinite(tflops)) {
            throw new ConfigException("--tflops: expected a positive number, got " + tflops);
        }
        return new Rates(Map.of("given", new Rate(tflops * 1e3, "given: --tflops " + Plan.num(tflops))));
    }

    /** The rate of the last {@code RESULT layer} line of a file ({@code --rates FILE}). */
    public static Rates measured(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new UncheckedIOException("--rates " + file + ": " + e.getMessage(), e);
        }
        String last = null;
        for (String l : lines) {
            if (l.startsWith("RESULT layer ")) {
                last = l;
            }
        }
        if (last == null) {
            throw new ConfigException("--rates " + file + ": no 'RESULT layer' line (tests/bench.sh layer prints one)");
        }
        return fromResult(last, file.toString());
    }

    /** The measured rate of one {@code RESULT layer ...} line: its {@code gflops}, labelled with its device and shape. */
    static Rates fromResult(String line, String source) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (String p : line.trim().split("\\s+")) {
            int eq = p.indexOf('=');
            if (eq > 0) {
                kv.put(p.substring(0, eq), p.substring(eq + 1));
            }
        }
        double g;
        try {
            g = Double.parseDouble(kv.getOrDefault("gflops", "nan"));
        } catch (NumberFormatException e) {
            g = Double.NaN;
        }
        if (!(g > 0) || Double.isInfinite(g)) {
            throw new ConfigException("--rates " + source + ": the RESULT layer line has no positive gflops: " + line);
        }
        String label = String.format(Locale.ROOT, "measured: tests/bench.sh layer on %s (width %s, seq %s, %s)",
                kv.getOrDefault("device", "an unnamed device"), kv.getOrDefault("width", "?"),
                kv.getOrDefault("seq", "?"), source);
        return new Rates(Map.of("measured", new Rate(g, label)));
    }

    /** Seconds of one step of stage {@code s} at its full batch per worker, at {@code gflops}. */
    static double stepSeconds(TrainConfig cfg, Stage s, double gflops) {
        double tokens = (double) s.batchPerWorker() * s.seqLen();
        return tokens * flopsPerToken(cfg, s) / (gflops * 1e9);
    }

    /** Wall seconds of stage {@code s}: its FLOPs over W workers at {@code gflops} each (a batch ramp's steps included). */
    static double stageSeconds(TrainConfig cfg, Stage s, double gflops) {
        long tokens = 0;
        for (long k = s.firstStep(); k < s.endStep(); k++) {
            tokens += (long) s.batchAt(k) * s.seqLen();
        }
        return tokens * flopsPerToken(cfg, s) / (gflops * 1e9);
    }

    /** The device FLOPs per token the plan counts for the stage (recomputation included), as in its stage line. */
    static double flopsPerToken(TrainConfig cfg, Stage s) {
        return Plan.memory(s, Math.max(s.batchPerWorker(), s.batchStart()), cfg.train()).flopsPerToken();
    }

    /** The plan's time lines: the rates, then per stage its step time and wall time, then the run's length in days. */
    public List<String> describe(TrainConfig cfg) {
        List<String> out = new ArrayList<>();
        StringBuilder head = new StringBuilder("time (compute only: FLOPs over the rate per worker; no exchange, data or "
                + "checkpoints) at ");
        int i = 0;
        for (Map.Entry<String, Rate> e : rates.entrySet()) {
            head.append(i++ > 0 ? "; " : "").append(String.format(Locale.ROOT, "%s %s TFLOP/s (%s)", e.getKey(),
                    tflops(e.getValue().gflops()), e.getValue().label()));
        }
        out.add(head.append(':').toString());
        Map<String, Double> total = new LinkedHashMap<>();
        for (Stage s : cfg.stages()) {
            List<String> step = new ArrayList<>(), wall = new ArrayList<>();
            for (Map.Entry<String, Rate> e : rates.entrySet()) {
                double g = e.getValue().gflops(), st = stageSeconds(cfg, s, g);
                step.add(seconds(stepSeconds(cfg, s, g)) + " " + e.getKey());
                wall.add(days(st) + " " + e.getKey());
                total.merge(e.getKey(), st, Double::sum);
            }
            out.add(String.format(Locale.ROOT, "  stage %s: step %s; stage %s (%d steps)", s.name(),
                    String.join(", ", step), String.join(", ", wall), s.steps()));
        }
        List<String> run = new ArrayList<>();
        total.forEach((k, v) -> run.add(days(v) + " " + k));
        out.add(String.format(Locale.ROOT, "  run: %s at %d workers", String.join(", ", run), cfg.train().workers()));
        return out;
    }

    static String tflops(double gflops) {
        return String.format(Locale.ROOT, gflops >= 100e3 ? "%.0f" : gflops >= 1e3 ? "%.1f" : "%.3g", gflops / 1e3);
    }

    static String seconds(double s) {
        return String.format(Locale.ROOT, s >= 100 ? "%.0f s" : s >= 10 ? "%.1f s" : "%.2f s", s);
    }

    static String days(double s) {
        double d = s / 86400;
        return String.format(Locale.ROOT, d >= 100 ? "%,.0f days" : d >= 10 ? "%.1f days" : d >= 0.1 ? "%.2f days"
                : "%.3g days", d);
    }
}
