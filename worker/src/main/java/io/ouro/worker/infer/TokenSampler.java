package io.ouro.worker.infer;

import java.util.Arrays;
import java.util.Random;

/**
 * Picks the next token from logits: greedy (temperature 0), or sampling at a temperature from the top-k tokens and
 * the smallest set whose probability reaches top-p, with a seeded generator (the same seed gives the same text).
 */
public final class TokenSampler {

    private final double temperature, topP;
    private final int topK;
    private final Random rng;

    public TokenSampler(double temperature, int topK, double topP, long seed) {
        if (!(temperature >= 0) || topK < 0 || !(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("sampling: expected temperature >= 0, top_k >= 0 (0: all), top_p in"
                    + " (0, 1]; got " + temperature + ", " + topK + ", " + topP);
        }
        this.temperature = temperature;
        this.topK = topK;
        this.topP = topP;
        this.rng = new Random(seed);
    }

    public static TokenSampler greedy() {
        return new TokenSampler(0, 0, 1, 0);
    }

    public int pick(float[] logits) {
        if (temperature == 0) {
            int best = 0;
            for (int j = 1; j < logits.length; j++) {
                if (logits[j] > logits[best]) {
                    best = j;
                }
            }
            return best;
        }
        Integer[] order = new Integer[logits.length];
        for (int j = 0; j < order.length; j++) {
            order[j] = j;
        }
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        int keep = topK == 0 ? order.length : Math.min(topK, order.length);
        double max = logits[order[0]], sum = 0;
        double[] p = new double[keep];
        for (int i = 0; i < keep; i++) {
            p[i] = Math.exp((logits[order[i]] - max) / temperature);
            sum += p[i];
        }
        // the smallest prefix whose mass reaches top-p
        double mass = 0;
        int cut = keep;
        for (int i = 0; i < keep; i++) {
            mass += p[i] / sum;
            if (mass >= topP) {
                cut = i + 1;
                break;
            }
        }
        double total = 0;
        for (int i = 0; i < cut; i++) {
            total += p[i];
        }
        double r = rng.nextDouble() * total;
        for (int i = 0; i < cut; i++) {
            r -= p[i];
            if (r <= 0) {
                return order[i];
            }
        }
        return order[cut - 1];
    }
}
