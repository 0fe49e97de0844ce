package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.ConfigException;
import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.opencl.DevicePeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ouro plan}'s step time and run length: the rates, their labels, and the arithmetic. */
class RatesTest {

    private static final String LINE = "RESULT layer device=NVIDIA_H100_80GB_HBM3 width=2048 seq=4096 attention_ms=1.0 "
            + "gemm_ms=2.0 reduce_ms=0.5 elementwise_ms=0.5 optimizer_ms=0.1 step_ms=4.2 gflops=12345.6 mfu_fp32=0.1500 "
            + "mfu_bf16=0.0100 ratio=0.1845";

    private static TrainConfig config() {
        // W = 4: a ramped stage (2 -> 4 sequences per worker over 4 steps) and a plain one
        return TrainConfig.parse("t.yaml", "run: {name: t}\ndata: {synthetic: {tokens: 1000}}\ntrain: {workers: 4}\n"
                + "stages:\n  - {name: a, steps: 10, seq_len: 16, global_batch_start: 8 sequences, global_batch: 16 "
                + "sequences, ramp_steps: 4}\n  - {name: b, steps: 6, seq_len: 32, global_batch: 8 sequences}\n");
    }

    @Test
    void theAssumedRatesAreSharesOfTheDataSheetPeaksAndSayTheyAreAssumed() {
        Rates r = Rates.assumed();
        assertEquals(List.of("fp32", "bf16 tensor cores"), List.copyOf(r.rates().keySet()));
        assertEquals(0.30 * DevicePeaks.fp32Gflops("H200"), r.rates().get("fp32").gflops(), 1e-9);
        assertEquals(0.40 * DevicePeaks.bf16TensorGflops("H200"), r.rates().get("bf16 tensor cores").gflops(), 1e-9);
        assertTrue(r.rates().get("fp32").gflops() > 0, "the assumed device has a known peak");
        assertEquals("assumed: 30% of an H200's fp32 peak 66.9 TFLOP/s", r.rates().get("fp32").label());
        assertEquals("assumed: 40% of an H200's dense bf16 peak 989.4 TFLOP/s",
                r.rates().get("bf16 tensor cores").label());
    }

    @Test
    void aMeasuredRateIsTheLastResultLayerLinesGflopsLabelledWithItsDevice(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("layer.txt");
        Files.write(f, List.of("per-op time ...", LINE.replace("12345.6", "1.5"), "load after: 1.0", LINE, "end"));
        Rates.Rate m = Rates.measured(f).rates().get("measured");
        assertEquals(12345.6, m.gflops(), 1e-9);
        assertEquals("measured: tests/bench.sh layer on NVIDIA_H100_80GB_HBM3 (width 2048, seq 4096, " + f + ")",
                m.label());

        Files.write(f, List.of("RESULT step ms=1 gflops=3"));
        assertTrue(assertThrows(ConfigException.class, () -> Rates.measured(f)).getMessage()
                .contains("no 'RESULT layer' line"));
        assertThrows(ConfigException.class, () -> Rates.fromResult(LINE.replace("gflops=12345.6", "gflops=n/a"), "x"));
        assertThrows(ConfigException.class, () -> Rates.fromResult(LINE.replace("gflops=12345.6", "gflops=0.0"), "x"));
        assertThrows(ConfigException.class, () -> Rates.fromResult("RESULT layer device=x ratio=n/a", "x"));
    }

    @Test
    void aGivenRateIsLabelledGiven() {
        Rates.Rate g = Rates.given(2.5).rates().get("given");
        assertEquals(2500, g.gflops(), 1e-9);
        assertEquals("given: --tflops 2.5", g.label());
        assertThrows(ConfigException.class, () -> Rates.given(0));
        assertThrows(ConfigException.class, () -> Rates.given(Double.NaN));
    }

    @Test
    void stepTimeIsTheStepsFlopsOverTheRateAndTheStageSumsItsStepsWithTheRamp() {
        TrainConfig cfg = config();
        Stage a = cfg.stages().get(0), b = cfg.stages().get(1);
        double g = 1000; // GFLOP/s
        double fa = Rates.flopsPerToken(cfg, a), fb = Rates.flopsPerToken(cfg, b);
        assertEquals(Plan.memory(a, 4, cfg.train()).flopsPerToken(), fa, 0);
        // a full step: 4 sequences of 16 tokens per worker
        assertEquals(4 * 16 * fa / 1e12, Rates.stepSeconds(cfg, a, g), 1e-15);
        // the stage: the ramp's steps at their own batch (2, 2.5 -> 2, ..., then 4), the rest at the full one
        long tokens = 0;
        for (long k = a.firstStep(); k < a.endStep(); k++) {
            tokens += (long) a.batchAt(k) * 16;
        }
        assertTrue(tokens < 10L * 4 * 16, "the ramp's first steps are smaller");
        assertEquals(tokens * fa / 1e12, Rates.stageSeconds(cfg, a, g), 1e-15);
        assertEquals(6 * 2 * 32 * fb / 1e12, Rates.stageSeconds(cfg, b, g), 1e-15);
        // the same time over W workers is the plan's FLOPs of the stage at W times the rate
        assertEquals(4 * tokens * fa, 4 * Rates.stageSeconds(cfg, a, g) * g * 1e9, 1e-6 * tokens * fa);
    }

    @Test
    void thePlanPrintsEachStagesStepAndWallTimeAndTheRunInDaysWithTheLabels() {
        TrainConfig cfg = config();
        Rates r = new Rates(new java.util.LinkedHashMap<>(java.util.Map.of("measured",
                new Rates.Rate(1000, "measured: here"))));
        List<String> out = r.describe(cfg);
        assertEquals(4, out.size(), String.join("\n", out));
        assertTrue(out.get(0).contains("measured 1.0 TFLOP/s (measured: here)"), out.get(0));
        double sa = Rates.stageSeconds(cfg, cfg.stages().get(0), 1000);
        double sb = Rates.stageSeconds(cfg, cfg.stages().get(1), 1000);
        assertEquals("  stage a: step " + Rates.seconds(Rates.stepSeconds(cfg, cfg.stages().get(0), 1000))
                + " measured; stage " + Rates.days(sa) + " measured (10 steps)", out.get(1));
        assertTrue(out.get(2).startsWith("  stage b: step "), out.get(2));
        assertEquals("  run: " + Rates.days(sa + sb) + " measured at 4 workers", out.get(3));
        List<String> assumed = Rates.assumed().describe(cfg);
        assertTrue(assumed.get(0).contains("fp32 20.1 TFLOP/s (assumed: 30% of an H200's fp32 peak 66.9 TFLOP/s)"),
                assumed.get(0));
        assertTrue(assumed.get(3).matches("  run: .* fp32, .* bf16 tensor cores at 4 workers"), assumed.get(3));
    }

    @Test
    void daysAndSecondsArePrintedToAFewPlaces() {
        assertEquals("980 days", Rates.days(980 * 86400.0));
        assertEquals("1,234 days", Rates.days(1234 * 86400.0));
        assertEquals("49.5 days", Rates.days(49.5 * 86400));
        assertEquals("0.50 days", Rates.days(0.5 * 86400));
        assertEquals("0.0100 days", Rates.days(0.01 * 86400));
        assertEquals("366 s", Rates.seconds(366.2));
        assertEquals("91.6 s", Rates.seconds(91.6));
        assertEquals("4.65 s", Rates.seconds(4.65));
    }
}
