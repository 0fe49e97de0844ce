package io.ouro.worker.infer;

import io.ouro.worker.model.LoopConfig;

import java.util.Arrays;

/**
 * Prompt in, tokens out: the prompt is prefilled with every loop step (one cache per (step, layer)), the cache is then
 * shared as its mode says, and new tokens are decoded with the exit policy until EOS or the length limit.
 */
public final class Generator {

    /**
     * What one generation produced and cost; per generated token its 0-based exit step and its log-probability under
     * the model at that step (log-softmax of the exit step's logits, before any temperature).
     */
    public record Result(int[] tokens, boolean stoppedAtEos, double meanExitStep, long cacheBytes, double seconds,
                         int[] exitCounts, int[] exitSteps, double[] logProbs) {
        public double tokensPerSecond() {
            return tokens.length / Math.max(seconds, 1e-9);
        }
    }

    private final LoopConfig cfg;
    private final java.util.function.Supplier<DecodeOps> ops;

    /** On the Java backend (fresh host memory for each generation). */
    public Generator(LoopConfig cfg, float[] params) {
        this.cfg = cfg;
        this.ops = () -> new JavaDecodeOps(cfg, params);
    }

    /** Over {@code ops} (e.g. the OpenCL backend's), reused by every generation; the caller closes them. */
    public Generator(DecodeOps ops) {
        this.cfg = ops.config();
        this.ops = () -> ops;
    }

    /** Generates at most {@code maxNew} tokens after {@code prompt}; {@code eos} below 0 never stops early. */
    public Result generate(int[] prompt, int maxNew, int eos, ExitPolicy policy, KvCache.Mode mode, TokenSampler sampler) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("prompt: expected at least one token");
        }
        long t0 = System.nanoTime();
        Decoder dec = new Decoder(ops.get(), mode);
        Decoder.Token last = null;
        for (int tok : prompt) {
            last = dec.next(tok, policy, true, false);
        }
        dec.cache().share();
        int[] out = new int[maxNew];
        int[] exits = new int[cfg.steps()], exitSteps = new int[maxNew];
        double[] logProbs = new double[maxNew];
        int count = 0;
        boolean eosSeen = false;
        long exitSum = 0;
        while (count < maxNew) {
            exits[last.exitStep()]++;
            exitSum += last.exitStep() + 1;
            int next = sampler.pick(last.logits());
            exitSteps[count] = last.exitStep();
            logProbs[count] = logProb(last.logits(), next);
            out[count++] = next;
            if (next == eos) {
                eosSeen = true;
                break;
            }
            if (count < maxNew) {
                last = dec.next(next, policy, false, false);
            }
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        return new Result(Arrays.copyOf(out, count), eosSeen, count == 0 ? 0 : (double) exitSum / count,
                dec.cache().bytes(), secs, exits, Arrays.copyOf(exitSteps, count), Arrays.copyOf(logProbs, count));
    }

    /** log softmax(logits)[id], in double with the maximum subtracted. */
    static double logProb(float[] logits, int id) {
        double max = Double.NEGATIVE_INFINITY;
        for (float z : logits) {
            max = Math.max(max, z);
        }
        double sum = 0;
        for (float z : logits) {
            sum += Math.exp(z - max);
        }
        return logits[id] - max - Math.log(sum);
    }
}
