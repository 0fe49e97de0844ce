package io.ouro.worker.step;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Recompute;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The activation memory of a {@link LoopSchedule}: the regions one micro-batch needs, planned ({@link Plan}: their
 * sizes and which are stash), allocated through {@link StepOps#allocate} and named here, with where each (loop step,
 * layer) keeps its input, its output and its cell. Which regions exist follows from {@link Recompute}: with
 * {@code NONE} every activation of every (loop step, layer) has its own; otherwise the hidden states kept across
 * layers are stash regions and a layer runs in one working set, whose row-wise activations hold one chunk of rows.
 */
public final class StepWorkspace {

    final boolean rc, storeLogits;
    // rows per chunk of a layer's row-wise ops, rows per block of logits
    final int chunk, block;
    private final Recompute recompute;
    private final int layers;

    // per micro-batch; stash regions in the recompute modes
    final Region emb;
    final Region[] xt, hn;
    // layer inputs 1..L-1 (layer 0 reads the embeddings or the previous step's hn): per (step, layer), or per layer
    // and reused by every step in LOOP_STEP mode
    final Region[] inputs;
    // working set
    final Region[] rstdF;
    final Region z, lse, ce, p, dz, dce, head, logits;
    private final Cell[] cells;
    final Region x0w, outw, hnw, y;
    final Region gH0, gH1, datt, dq, dk, dv, gA, gB, gM, gG, gU;

    /**
     * The activations of one layer application: q, k, v, the attention output and state for every row; the rest
     * for one chunk of rows (every row in NONE mode, where a cell is kept per (loop step, layer)).
     */
    static final class Cell {
        Region q, k, v, att, state;
        Region a1, o, x1, f1, f, g, u, m, rstd1, rstd2, rstd3, rstd4;
    }

    /** Plans and allocates the regions of a {@link LoopSchedule} with these arguments (see its constructors). */
    StepWorkspace(LoopConfig cfg, StepOps ops, int micro, int seqLen, Recompute recompute, int chunk,
                  boolean keepLogits, boolean bf16Stash, boolean backward) {
        this.recompute = recompute;
        this.rc = recompute != Recompute.NONE;
        this.layers = cfg.layers();
        this.storeLogits = storesLogits(recompute, keepLogits, backward);
        int rows = Math.multiplyExact(micro, seqLen);
        this.chunk = chunkRows(rows, recompute, chunk);
        this.block = headBlock(rows, cfg.vocab());

        Plan plan = new Plan(cfg, micro, seqLen, recompute, chunk, keepLogits,
                ops.attentionStateSize(micro, seqLen, cfg.heads()), backward);
        Region[] r = ops.allocate(plan.sizes(), plan.stash(), bf16Stash);
        int[] at = {0};
        emb = r[at[0]++];
        xt = take(r, at, cfg.steps());
        hn = take(r, at, cfg.steps());
        inputs = take(r, at, plan.inputs);
        rstdF = take(r, at, cfg.steps());
        z = r[at[0]++];
        lse = r[at[0]++];
        ce = r[at[0]++];
        p = r[at[0]++];
        dz = r[at[0]++];
        dce = r[at[0]++];
        head = r[at[0]++];
        logits = storeLogits ? r[at[0]++] : null;
        cells = new Cell[plan.cells];
        for (int i = 0; i < cells.length; i++) {
            Cell c = new Cell();
            c.q = r[at[0]++];
            c.k = r[at[0]++];
            c.v = r[at[0]++];
            c.att = r[at[0]++];
            c.state = r[at[0]++];
            c.a1 = r[at[0]++];
            c.o = r[at[0]++];
            c.x1 = r[at[0]++];
            c.f1 = r[at[0]++];
            c.f = r[at[0]++];
            c.g = r[at[0]++];
            c.u = r[at[0]++];
            c.m = r[at[0]++];
            c.rstd1 = r[at[0]++];
            c.rstd2 = r[at[0]++];
            c.rstd3 = r[at[0]++];
            c.rstd4 = r[at[0]++];
            cells[i] = c;
        }
        x0w = rc ? r[at[0]++] : null;
        outw = rc ? r[at[0]++] : null;
        hnw = rc ? r[at[0]++] : null;
        y = rc ? r[at[0]++] : null;
        gH0 = r[at[0]++];
        gH1 = r[at[0]++];
        datt = r[at[0]++];
        dq = r[at[0]++];
        dk = r[at[0]++];
        dv = r[at[0]++];
        gA = r[at[0]++];
        gB = r[at[0]++];
        gM = r[at[0]++];
        gG = r[at[0]++];
        gU = r[at[0]++];
        if (at[0] != r.length) {
            throw new IllegalStateException("StepWorkspace: " + r.length + " regions planned, " + at[0] + " used");
        }
    }

    /**
     * Whether the forward keeps every step's (N, V) logits: when asked for, and for a backward without
     * recomputation, which then reads them instead of running the LM head's product again (a third of the head's
     * FLOPs).
     */
    public static boolean storesLogits(Recompute recompute, boolean keepLogits, boolean backward) {
        return keepLogits || backward && recompute == Recompute.NONE;
    }

    /** Rows per block of logits, chosen so a block stays near 16M elements. */
    public static int headBlock(int rows, int vocab) {
        return Math.max(1, Math.min(rows, Math.max(64, (1 << 24) / vocab)));
    }

    /** Rows per chunk of a layer's row-wise ops: every row without recomputation or when {@code chunk} is 0. */
    public static int chunkRows(int rows, Recompute recompute, int chunk) {
        return recompute == Recompute.NONE || chunk == 0 ? rows : Math.min(rows, chunk);
    }

    /**
     * The regions one micro-batch needs, in the order the workspace names them, and which are stash: what the
     * backend allocates and what {@code ouro plan} reports are this one list.
     */
    public static final class Plan {
        final int cells, inputs;
        private final List<Long> sizes = new ArrayList<>();
        private final List<Boolean> stash = new ArrayList<>();

        public Plan(LoopConfig cfg, int micro, int seqLen, Recompute recompute, int chunk, boolean keepLogits,
                    long stateSize) {
            this(cfg, micro, seqLen, recompute, chunk, keepLogits, stateSize, true);
        }

        /** The same; {@code backward} as the schedule's ({@link #storesLogits}). */
        public Plan(LoopConfig cfg, int micro, int seqLen, Recompute recompute, int chunk, boolean keepLogits,
                    long stateSize, boolean backward) {
            long n = (long) micro * seqLen, d = cfg.hidden(), f = cfg.ffn(), v = cfg.vocab();
            long c = chunkRows((int) Math.min(n, Integer.MAX_VALUE), recompute, chunk);
            int t = cfg.steps(), l = cfg.layers();
            boolean rc = recompute != Recompute.NONE;
            long nd = n * d;
            cells = rc ? 1 : t * l;
            inputs = recompute == Recompute.LOOP_STEP ? l - 1 : t * (l - 1);
            add(1, nd, rc);                               // embeddings
            add(t, nd, rc);                               // xt: each step's final-norm input
            add(t, nd, rc);                               // hn: its output
            add(inputs, nd, rc);
            add(t, n, false);                             // final-norm rstd
            add(6, t * n, false);                         // z, lse, ce, p, dz, dce
            add(1, headBlock((int) Math.min(n, Integer.MAX_VALUE), (int) v) * v, false);
            if (storesLogits(recompute, keepLogits, backward)) {
                add(1, t * n * v, false);                 // every step's logits
            }
            for (int i = 0; i < cells; i++) {
                add(4, nd, false);                        // q, k, v, attention output
                add(1, stateSize, false);
                add(5, c * d, false);                     // a1, o, x1, f1, f
                add(3, c * f, false);                     // g, u, m
                add(4, c, false);                         // rstd1..4
            }
            if (rc) {
                add(3, nd, false);                        // x0w, outw, hnw: a layer's input and output, hn
                add(1, c * d, false);                     // y: a recomputed chunk's output
            }
            add(6, nd, false);                            // gH0, gH1, datt, dq, dk, dv
            add(2, c * d, false);                         // gA, gB
            add(3, c * f, false);                         // gM, gG, gU
        }

        private void add(int count, long size, boolean isStash) {
            for (int i = 0; i < count; i++) {
                sizes.add(size);
                stash.add(isStash);
            }
        }

        public long[] sizes() {
            return sizes.stream().mapToLong(Long::longValue).toArray();
        }

        public boolean[] stash() {
            boolean[] s = new boolean[stash.size()];
            for (int i = 0; i < s.length; i++) {
                s[i] = stash.get(i);
            }
            return s;
        }

        /** Elements of all regions. */
        public long total() {
            return sizes.stream().mapToLong(Long::longValue).sum();
        }

        /** Elements of the stash regions. */
        public long stashTotal() {
            long s = 0;
            for (int i = 0; i < sizes.size(); i++) {
                s += stash.get(i) ? sizes.get(i) : 0;
            }
            return s;
        }
    }

    private static Region[] take(Region[] r, int[] at, int count) {
        Region[] out = Arrays.copyOfRange(r, at[0], at[0] + count);
        at[0] += count;
        return out;
    }

    Cell cellFor(int t, int l) {
        return cells[rc ? 0 : t * layers + l];
    }

    // the input of layer l of step t: the embeddings, the previous step's hn, or the previous layer's output
    Region inputOf(int t, int l) {
        if (l == 0) {
            return t == 0 ? emb : hn[t - 1];
        }
        return recompute == Recompute.LOOP_STEP ? inputs[l - 1] : inputs[t * (layers - 1) + l - 1];
    }

    // where layer l of step t's output is kept: the next layer's input, or the final norm's input
    Region outputOf(int t, int l) {
        if (l + 1 == layers) {
            return xt[t];
        }
        return recompute == Recompute.LOOP_STEP ? inputs[l] : inputs[t * (layers - 1) + l];
    }

    // a chunk-sized region at row r0 of the chunk: its own rows without recomputation, the one chunk's otherwise
    Region local(Region r, int r0, int width) {
        return rc ? r : r.at((long) r0 * width);
    }
}
