package io.ouro.worker.infer;

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
 *
 * <p>This class is the rule; the memory is the {@link DecodeOps}' slots (host arrays or device buffers).
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

    private final DecodeOps ops;
    private final int steps, layers, d;
    private final Mode mode;
    private boolean shared;
    private int len;

    public KvCache(DecodeOps ops, Mode mode) {
        this.ops = ops;
        this.steps = ops.config().steps();
        this.layers = ops.config().layers();
        this.d = ops.config().hidden();
        this.mode = mode;
    }

    public Mode mode() {
        return mode;
    }

    /** Tokens held. */
    public int length() {
        return len;
    }

    /** The slot that step t of layer l attends to. */
    public int slot(int t, int l) {
        return shared ? steps * layers + l : t * layers + l;
    }

    /** The keys (length, D) that step t of layer l attends to (tests and diagnostics). */
    public float[] keys(int t, int l) {
        return ops.readSlot(slot(t, l), len, false);
    }

    public float[] values(int t, int l) {
        return ops.readSlot(slot(t, l), len, true);
    }

    /**
     * Appends one token from the keys and values of its computed steps {@code t < computed} (the ops' key/value
     * vectors); the rest follow the rule above.
     */
    public void append(int computed) {
        int n = shared ? layers : steps * layers, i = 0;
        int[] slots = new int[n], ls = new int[n], t0 = new int[n], t1 = new int[n];
        for (int l = 0; l < layers; l++) {
            if (!shared) {
                for (int t = 0; t < steps; t++) {
                    int src = Math.min(t, computed - 1);
                    slots[i] = room(t * layers + l);
                    t0[i] = src;
                    t1[i] = src + 1;
                    ls[i++] = l;
                }
            } else {
                slots[i] = room(steps * layers + l);
                t0[i] = mode == Mode.LAST_STEP ? computed - 1 : 0;
                t1[i] = computed;
                ls[i++] = l;
            }
        }
        ops.storeRows(len, slots, ls, t0, t1);
        len++;
    }

    // the slot, checked to have room for one more row
    private int room(int slot) {
        if (len >= ops.capacity(slot)) {
            throw new IllegalStateException("the KV cache's " + (shared ? "shared" : "per-step") + " slots hold "
                    + ops.capacity(slot) + " tokens; this decoder was sized for fewer tokens than the prompt and the"
                    + " new tokens");
        }
        return slot;
    }

    /**
     * Ends the prefill: in the shared modes the per-step caches become one per layer (the last step's, or the average
     * over steps) and the per-step ones are released; a FULL cache stays as it is.
     */
    public void share() {
        if (mode == Mode.FULL || shared) {
            return;
        }
        for (int l = 0; l < layers; l++) {
            int dst = steps * layers + l;
            if (len > ops.capacity(dst)) {
                throw new IllegalStateException("the shared KV cache holds " + ops.capacity(dst) + " tokens, the prompt "
                        + len);
            }
            if (mode == Mode.LAST_STEP) {
                ops.mergeSlots(dst, (steps - 1) * layers + l, layers, 1, len);
            } else {
                ops.mergeSlots(dst, l, layers, steps, len);
            }
        }
        for (int s = 0; s < steps * layers; s++) {
            ops.release(s);
        }
        shared = true;
    }

    /** Bytes of keys and values held for the tokens so far (float32). */
    public long bytes() {
        return 2L * (shared ? layers : steps * layers) * len * d * Float.BYTES;
    }
}
