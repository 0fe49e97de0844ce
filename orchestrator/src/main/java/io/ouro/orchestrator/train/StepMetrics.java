package io.ouro.orchestrator.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.Locale;
import java.util.Map;

/**
 * One global step as rank 0 saw it after the all-reduce: the objective over the whole global batch,
 * per-loop-step cross-entropy, the mean exit distribution, the gradient norm before clipping, the
 * learning rate, where the time went on rank 0 (compute, all-reduce, waiting for data, the rest), why the
 * update was skipped (null when it was applied) and anything else the step has to say (null when nothing).
 * {@code commMs} is the time the step waited for communication: the exchange after its backward, and with ZeRO-1
 * what its forward waited for of the all-gather of the previous update's parameters; {@code exchangeMs} the time
 * the gradient exchange kept a ring busy, of which the share {@code hidden} ran behind the backward (NaN with
 * one rank, where nothing is exchanged). ZeRO-1: {@code gatherMs} the time that all-gather (started after the
 * previous step's update, read by this step's forward) kept a ring busy, of which the share {@code gatherHidden} ran
 * while this rank did something else than wait for it (NaN where no all-gather preceded the step: one rank, the
 * replicated optimizer, a segment's first step, a skipped update).
 */
public record StepMetrics(long step, double loss, double[] stepCe, double[] meanExit, double gradNorm, double lr,
                          long tokens, double wallMs, double computeMs, double commMs, double dataWaitMs,
                          double exchangeMs, double hidden, double gatherMs, double gatherHidden, String skipped,
                          String note) implements Serializable {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Time that is neither compute nor all-reduce: data wait plus orchestration. */
    public double overheadMs() {
        return Math.max(0, wallMs - computeMs - commMs);
    }

    public String line(String stage, double peakGflops, double flopsPerToken) {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "stage %s step %d loss %.4f ce [", stage, step, loss));
        for (int t = 0; t < stepCe.length; t++) {
            b.append(t == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.3f", stepCe[t]));
        }
        b.append("] exit [");
        for (int t = 0; t < meanExit.length; t++) {
            b.append(t == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.2f", meanExit[t]));
        }
        double tokS = tokens / (wallMs / 1e3);
        b.append(String.format(Locale.ROOT, "] gnorm %.3f lr %.2e %.0f tok/s", gradNorm, lr, tokS));
        if (peakGflops > 0) {
            b.append(String.format(Locale.ROOT, " MFU %.1f%%", 100 * tokS * flopsPerToken / 1e9 / peakGflops));
        }
        if (skipped != null) {
            b.append(" SKIPPED (").append(skipped).append(')');
        }
        if (note != null) {
            b.append(" (").append(note).append(')');
        }
        b.append(String.format(Locale.ROOT, " | %.0f ms: compute %.0f, all-reduce %.0f, data wait %.1f, other %.1f",
                wallMs, computeMs, commMs, dataWaitMs, Math.max(0, overheadMs() - dataWaitMs)));
        if (!Double.isNaN(hidden)) {
            b.append(String.format(Locale.ROOT, "; exchange %.0f ms, %.0f%% hidden", exchangeMs, 100 * hidden));
        }
        if (!Double.isNaN(gatherHidden)) {
            b.append(String.format(Locale.ROOT, "; gather %.0f ms, %.0f%% hidden", gatherMs, 100 * gatherHidden));
        }
        return b.toString();
    }

    /**
     * The step as one JSON object, the line format of the run's metrics file and of the live progress
     * channel: {@code stage}, {@code step}, {@code loss}, {@code ce}, {@code exit}, {@code grad_norm},
     * {@code lr}, {@code tokens}, {@code tok_s}, the times in ms, {@code hidden}, {@code gather_ms} and
     * {@code gather_hidden}, {@code skipped} and {@code note} when set,
     * plus whatever {@code extra} fields the caller adds (run id, time).
     */
    public String json(String stage, Map<String, Object> extra) {
        ObjectNode o = JSON.createObjectNode();
        new java.util.TreeMap<>(extra).forEach(o::putPOJO);
        o.put("stage", stage);
        o.put("step", step);
        o.put("loss", loss);
        double[][] arrays = {stepCe, meanExit};
        String[] names = {"ce", "exit"};
        for (int i = 0; i < 2; i++) {
            var a = o.putArray(names[i]);
            for (double x : arrays[i]) {
                a.add(x);
            }
        }
        o.put("grad_norm", gradNorm);
        o.put("lr", lr);
        o.put("tokens", tokens);
        o.put("tok_s", tokens / (wallMs / 1e3));
        o.put("wall_ms", wallMs);
        o.put("compute_ms", computeMs);
        o.put("comm_ms", commMs);
        o.put("data_wait_ms", dataWaitMs);
        o.put("exchange_ms", exchangeMs);
        if (!Double.isNaN(hidden)) {
            o.put("hidden", hidden);
        }
        if (!Double.isNaN(gatherHidden)) {
            o.put("gather_ms", gatherMs);
            o.put("gather_hidden", gatherHidden);
        }
        if (skipped != null) {
            o.put("skipped", skipped);
        }
        if (note != null) {
            o.put("note", note);
        }
        try {
            return JSON.writeValueAsString(o);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Parses a line written by {@link #json}; the other fields of the line are in {@code fields}. */
    public static StepMetrics parse(String line, Map<String, String> fields) {
        JsonNode o;
        try {
            o = JSON.readTree(line);
        } catch (IOException e) {
            throw new IllegalArgumentException("not a step metrics line: " + line, e);
        }
        o.fields().forEachRemaining(e -> fields.put(e.getKey(), e.getValue().asText()));
        return new StepMetrics(o.path("step").asLong(), o.path("loss").asDouble(), doubles(o.path("ce")),
                doubles(o.path("exit")), o.path("grad_norm").asDouble(), o.path("lr").asDouble(), o.path("tokens").asLong(),
                o.path("wall_ms").asDouble(), o.path("compute_ms").asDouble(), o.path("comm_ms").asDouble(),
                o.path("data_wait_ms").asDouble(), o.path("exchange_ms").asDouble(),
                o.hasNonNull("hidden") ? o.get("hidden").asDouble() : Double.NaN,
                o.hasNonNull("gather_ms") ? o.get("gather_ms").asDouble() : Double.NaN,
                o.hasNonNull("gather_hidden") ? o.get("gather_hidden").asDouble() : Double.NaN, o.hasNonNull("skipped") ? o.get("skipped").asText() : null,
                o.hasNonNull("note") ? o.get("note").asText() : null);
    }

    private static double[] doubles(JsonNode a) {
        double[] d = new double[a.size()];
        for (int i = 0; i < d.length; i++) {
            d[i] = a.get(i).asDouble();
        }
        return d;
    }
}
