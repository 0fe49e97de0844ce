package io.ouro.orchestrator.config;

import io.ouro.worker.data.Sampler;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Recompute;

import java.io.Serializable;
import java.util.Map;

/**
 * One stage of the curriculum: global steps {@code [firstStep, firstStep + steps)}, its sequence length,
 * per-worker batch (optionally ramped from {@code batchStart} over {@code rampSteps}; derived for the run's W when
 * the config gives the stage's {@code global_batch}), the model as it
 * runs in this stage (recurrent steps, beta, RoPE base, layers), learning rate, data mixture, objective.
 */
public record Stage(String name, int index, long firstStep, long steps, int seqLen, int batchPerWorker,
                    int batchStart, long rampSteps, LoopConfig model, Lr lr, Map<String, Double> mixture,
                    String onExhausted, boolean stageTwo, Upcycle upcycle, int microBatch, Recompute recompute,
                    int recomputeChunk, Sampler.Layout layout) implements Serializable {

    public long endStep() {
        return firstStep + steps;
    }

    /** Sequences per worker at global step {@code s} (the batch ramp, in whole sequences). */
    public int batchAt(long s) {
        return batchAt(s - firstStep, batchStart, batchPerWorker, rampSteps);
    }

    /** Sequences per worker at step {@code k} of a stage whose batch ramps from {@code start} to {@code end}. */
    static int batchAt(long k, int start, int end, long rampSteps) {
        if (rampSteps <= 0 || start == end) {
            return end;
        }
        double f = Math.min(1.0, (double) k / rampSteps);
        return (int) Math.round(start + (end - start) * f);
    }

    /**
     * The steps that train a budget of {@code tokens} on {@code workers} workers, the ramp counted step by step: the
     * most steps whose tokens stay within the budget (at least one), so that a stage trains its tokens less at most
     * one step's batch.
     */
    static long stepsForTokens(long tokens, int workers, int seqLen, int start, int end, long rampSteps) {
        long perSequence = (long) workers * seqLen;
        long sum = 0;
        long k = 0;
        if (start != end) {
            for (; k < rampSteps; k++) {
                long t = perSequence * batchAt(k, start, end, rampSteps);
                if (sum + t > tokens) {
                    return Math.max(1, k);
                }
                sum += t;
            }
        }
        return Math.max(1, k + (tokens - sum) / (perSequence * end));
    }

    public double lrAt(long s) {
        return lr.at(s - firstStep, steps);
    }

    /** Learning rate of one stage: linear warm-up to {@code peak}, then constant, cosine or WSD to the floor. */
    public record Lr(double peak, long warmupSteps, String schedule, double minRatio, double decayFraction)
            implements Serializable {

        public double at(long s, long steps) {
            if (s < warmupSteps) {
                return peak * (s + 1) / warmupSteps;
            }
            double floor = peak * minRatio;
            switch (schedule) {
                case "constant":
                    return peak;
                case "wsd": {
                    long decay = Math.max(1, Math.round(steps * decayFraction));
                    long start = steps - decay;
                    if (s < start) {
                        return peak;
                    }
                    return peak + (floor - peak) * Math.min(1.0, (double) (s - start + 1) / decay);
                }
                default: { // cosine
                    double t = steps <= warmupSteps ? 1 : (double) (s - warmupSteps) / (steps - warmupSteps);
                    return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, t)));
                }
            }
        }
    }

    /** Duplicate the layers at the start of a stage: tile [1..L, 1..L] or interleave [1,1,2,2,...]. */
    public record Upcycle(int layers, String mode) implements Serializable {
    }
}
