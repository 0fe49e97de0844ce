package io.ouro.worker.infer;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.TensorView;

/**
 * The ops of decoding one token over a KV cache, which {@link Decoder} calls in the one order it defines (the way
 * {@code LoopSchedule} is the training step over {@code StepOps}). Implementations: {@link JavaDecodeOps} (the
 * reference kernels of {@code RowOps} on host arrays) and the OpenCL backend's {@code OpenClDecodeOps} (device
 * buffers, the cache resident on the device). The parameters belong to the implementation.
 *
 * <p>Vectors are named by small ints: the fixed ones below, the gate logit of step t ({@link #gate}) and the query,
 * key and value of (step t, layer l) of the token being decoded ({@link #query}, {@link #key}, {@link #value}: three
 * consecutive ids). Consecutive ids of one size are consecutive in memory where an implementation says so, which lets
 * it run {@link #linears} and {@link #rope} over several vectors as one op. The cache is a set of slots of
 * rows of D keys and D values: slot {@code t * L + l} per (step, layer), slot {@code T * L + l} shared per layer
 * ({@link KvCache} decides which one a step reads and what a row holds).
 */
public interface DecodeOps extends AutoCloseable {

    int H = 0, A1 = 1, ATT = 2, O = 3, X1 = 4, F1 = 5, G = 6, U = 7, M = 8, F = 9, LOGITS = 10;
    /** Vectors before the per-step ones. */
    int FIXED = 11;

    static int gate(int t) {
        return FIXED + t;
    }

    static int query(LoopConfig cfg, int t, int l) {
        return FIXED + cfg.steps() + 3 * (t * cfg.layers() + l);
    }

    static int key(LoopConfig cfg, int t, int l) {
        return query(cfg, t, l) + 1;
    }

    static int value(LoopConfig cfg, int t, int l) {
        return query(cfg, t, l) + 2;
    }

    /** Vectors in all. */
    static int vectors(LoopConfig cfg) {
        return FIXED + cfg.steps() + 3 * cfg.steps() * cfg.layers();
    }

    /** The elements of vector v. */
    static int size(LoopConfig cfg, int v) {
        if (v == G || v == U || v == M) {
            return cfg.ffn();
        }
        if (v == LOGITS) {
            return cfg.vocab();
        }
        if (v >= FIXED && v < FIXED + cfg.steps()) {
            return 1;
        }
        return cfg.hidden();
    }

    LoopConfig config();

    /** Rows slot {@code slot} can hold (per-step slots may hold fewer than shared ones). */
    int capacity(int slot);

    // h (D) = embedding row of token
    void embed(int h, int token);

    // y (D) = x / rms(x) * w
    void rmsnorm(int y, int x, TensorView w);

    // y (O) = x (I) . w (O,I)^T
    void linear(int y, int x, TensorView w, int in, int out);

    /** ys[i] (O) = x (I) . ws[i] (O,I)^T for every i: several products of one input (q, k, v; gate, up). */
    default void linears(int[] ys, int x, TensorView[] ws, int in, int out) {
        for (int i = 0; i < ys.length; i++) {
            linear(ys[i], x, ws[i], in, out);
        }
    }

    // y = x / rms(x) * w + r (a normalized branch added to the residual r)
    default void rmsnormAdd(int y, int x, TensorView w, int r, int count) {
        rmsnorm(y, x, w);
        add(y, r, count);
    }

    // y[0] += bias (one element)
    void biasAdd(int y, TensorView bias);

    // the vectors first .. first + count - 1 (each (H, hd)) rotated in place to position pos
    void rope(int first, int count, int pos);

    // acc += x, count elements
    void add(int acc, int x, int count);

    // m = silu(g) * u
    void swiglu(int m, int g, int u, int count);

    /** out = attention of the query q over rows [0, len) of cache slot {@code slot}, then the key and value given. */
    void attend(int out, int q, int slot, int len, int selfKey, int selfValue);

    /** Row {@code row} of slot {@code slot} = the mean over steps {@code t0 <= t < t1} of key/value (t, l). */
    void storeRow(int slot, int row, int l, int t0, int t1);

    /**
     * Row {@code row} of each slot {@code slots[i]} = the mean over steps {@code t0[i] <= t < t1[i]} of key/value
     * (t, {@code layers[i]}): one token's rows of the cache ({@link KvCache#append}), in one op where an implementation
     * can.
     */
    default void storeRows(int row, int[] slots, int[] layers, int[] t0, int[] t1) {
        for (int i = 0; i < slots.length; i++) {
            storeRow(slots[i], row, layers[i], t0[i], t1[i]);
        }
    }

    /**
     * Runs loop step t of the token at position {@code pos} (its L layers attending to the slots {@code slots[l]}, the
     * final norm into H and the exit gate's logit {@link #gate}(t)) as one fused op, and says true; false where this
     * implementation has no fused step, and then the {@link Decoder} runs the ops one by one. Both give the same
     * vectors up to float rounding (the fused op is tested against the ops).
     */
    default boolean loopStep(int t, int pos, int[] slots) {
        return false;
    }

    /** Rows [0, rows) of slot {@code dst} = the mean of those rows of slots {@code first + i * stride}, i < count. */
    void mergeSlots(int dst, int first, int stride, int count, int rows);

    /** The slot is no longer read (its memory may go). */
    void release(int slot);

    /** The first {@code count} elements of vector v. */
    float[] read(int v, int count);

    /** Rows [0, rows) of slot {@code slot}'s keys, or values (tests and diagnostics). */
    float[] readSlot(int slot, int rows, boolean values);

    /** The gate logits of steps [0, count) (the vectors {@link #gate}). */
    float[] readGates(int count);

    @Override
    void close();
}
