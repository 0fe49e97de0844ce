package io.ouro.worker.infer;

import java.util.Arrays;

/**
 * Keys and values of the tokens decoded so far, per (loop step, layer) while the cache is {@link Mode#FULL}, or per
 * layer once shared ({@link #share}): the paper's KV-cache sharing (looplm-spec §5), where every loop step of a new
 * token attends to one cache per layer holding each earlier token's last-step keys and values ({@code LAST_STEP}) or
 * their average over the steps ({@code AVERAGE}), T times less memory than {@code FULL}.
 *
 * <p>A token that exits early (static or Q-exit) has no keys and values of the steps it skipped. HF Ouro never meets
 * this (its decoding runs all T steps for every token and only picks which step's logits to use); we skip the steps
 * and choose this rule: the skipped steps' entries are copies of the last computed step's, so a later token's step t
 * attends to the deepest representation that token reached, as in the last-step sharing the paper measured. In the
 * shared modes a token stores its last computed step (LAST_STEP) or the average over its computed steps (AVERAGE).
 */
public final class KvCache {

    public enum Mode {
        FULL, LAST_STEP, AVERAGE;

        public static Mode parse(String s) {
            return switch (s) {
                case "full" -> FULL;
                case "last_step" -> LAST_STEP;
                case "average" -> AVERAGE;
                default -> throw new IllegalArgumentException("cache: expected full, last_step or average, got '" + s + "'");
            };
        }
    }

    private final int steps, layers, d;
    private final Mode mode;
    private boolean shared;
    private float[][] k, v;
    private int len, cap;

    public KvCache(int steps, int layers, int d, Mode mode) {
        this.steps = steps;
        this.layers = layers;
        this.d = d;
        this.mode = mode;
        this.cap = 16;
        this.k = new float[steps * layers][cap * d];
        this.v = new float[steps * layers][cap * d];
    }

    public Mode mode() {
        return mode;
    }

    /** Tokens held. */
    public int length() {
        return len;
    }

    /** The keys (length, D) that step t of layer l attends to. */
    public float[] keys(int t, int l) {
        return k[slot(t, l)];
    }

    public float[] values(int t, int l) {
        return v[slot(t, l)];
    }

    private int slot(int t, int l) {
        return shared ? l : t * layers + l;
    }

    /**
     * Appends one token: {@code ks[t][l]}, {@code vs[t][l]} (D each) for its computed steps {@code t < computed}; the
     * rest follow the rule above.
     */
    public void append(float[][][] ks, float[][][] vs, int computed) {
        if (len == cap) {
            cap *= 2;
            for (int s = 0; s < k.length; s++) {
                k[s] = Arrays.copyOf(k[s], cap * d);
                v[s] = Arrays.copyOf(v[s], cap * d);
            }
        }
        int at = len * d;
        for (int l = 0; l < layers; l++) {
            if (!shared) {
                for (int t = 0; t < steps; t++) {
                    int src = Math.min(t, computed - 1);
                    System.arraycopy(ks[src][l], 0, k[t * layers + l], at, d);
                    System.arraycopy(vs[src][l], 0, v[t * layers + l], at, d);
                }
            } else if (mode == Mode.LAST_STEP) {
                System.arraycopy(ks[computed - 1][l], 0, k[l], at, d);
                System.arraycopy(vs[computed - 1][l], 0, v[l], at, d);
            } else {
                for (int i = 0; i < d; i++) {
                    double sk = 0, sv = 0;
                    for (int t = 0; t < computed; t++) {
                        sk += ks[t][l][i];
                        sv += vs[t][l][i];
                    }
                    k[l][at + i] = (float) (sk / computed);
                    v[l][at + i] = (float) (sv / computed);
                }
            }
        }
        len++;
    }

    /**
     * Ends the prefill: in the shared modes the per-step caches become one per layer (the last step's, or the average
     * over steps); a FULL cache stays as it is.
     */
    public void share() {
        if (mode == Mode.FULL || shared) {
            return;
        }
        float[][] k1 = new float[layers][], v1 = new float[layers][];
        for (int l = 0; l < layers; l++) {
            if (mode == Mode.LAST_STEP) {
                k1[l] = k[(steps - 1) * layers + l];
                v1[l] = v[(steps - 1) * layers + l];
            } else {
                k1[l] = new float[cap * d];
                v1[l] = new float[cap * d];
                for (int i = 0; i < len * d; i++) {
                    double sk = 0, sv = 0;
                    for (int t = 0; t < steps; t++) {
                        sk += k[t * layers + l][i];
                        sv += v[t * layers + l][i];
                    }
                    k1[l][i] = (float) (sk / steps);
                    v1[l][i] = (float) (sv / steps);
                }
            }
        }
        k = k1;
        v = v1;
        shared = true;
    }

    /** Bytes of keys and values held for the tokens so far (float32). */
    public long bytes() {
        return 2L * k.length * len * d * Float.BYTES;
    }
}
