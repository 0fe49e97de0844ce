package io.ouro.worker.infer;

import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.reference.Rope;
import io.ouro.worker.reference.RowOps;

import java.util.Arrays;

/**
 * {@link DecodeOps} in plain Java: the reference kernels on one row ({@link RowOps}) over host arrays; the cache's
 * slots grow by doubling, so the capacity is unbounded.
 */
public final class JavaDecodeOps implements DecodeOps {

    private final LoopConfig cfg;
    private final ParamLayout layout;
    private final float[] params;
    private final float[][] vec;
    private final float[][] kc, vc;
    private final int d, hd;
    private final float eps;
    private float[] cos = new float[0], sin = new float[0], cosRow, sinRow;
    private int ropeLen;

    public JavaDecodeOps(LoopConfig cfg, float[] params) {
        this.cfg = cfg;
        this.layout = new ParamLayout(cfg);
        if (params.length != layout.arraySize()) {
            throw new IllegalArgumentException("params: expected " + layout.arraySize() + " for " + cfg + ", got "
                    + params.length);
        }
        this.params = params;
        this.d = cfg.hidden();
        this.hd = cfg.headDim();
        this.eps = (float) cfg.normEps();
        int n = DecodeOps.vectors(cfg);
        vec = new float[n][];
        for (int v = 0; v < n; v++) {
            vec[v] = new float[DecodeOps.size(cfg, v)];
        }
        int slots = cfg.steps() * cfg.layers() + cfg.layers();
        kc = new float[slots][];
        vc = new float[slots][];
        cosRow = new float[hd / 2];
        sinRow = new float[hd / 2];
    }

    @Override
    public LoopConfig config() {
        return cfg;
    }

    @Override
    public int capacity(int slot) {
        return Integer.MAX_VALUE / Math.max(1, d);
    }

    @Override
    public void embed(int h, int token) {
        RowOps.embed(vec[h], params, layout.embed().off(), token, d);
    }

    @Override
    public void rmsnorm(int y, int x, TensorView w) {
        RowOps.rmsnorm(vec[y], vec[x], params, w.off(), d, eps);
    }

    @Override
    public void linear(int y, int x, TensorView w, int in, int out) {
        RowOps.linear(vec[y], vec[x], params, w.off(), in, out);
    }

    @Override
    public void biasAdd(int y, TensorView bias) {
        vec[y][0] += params[bias.off()];
    }

    @Override
    public void rope(int first, int count, int pos) {
        int half = hd / 2;
        if (pos >= ropeLen) {
            // the training step's tables, grown by doubling
            ropeLen = Math.max(64, Integer.highestOneBit(pos) * 2);
            cos = new float[ropeLen * half];
            sin = new float[ropeLen * half];
            Rope.tables(cos, sin, ropeLen, hd, cfg.ropeBase());
        }
        System.arraycopy(cos, pos * half, cosRow, 0, half);
        System.arraycopy(sin, pos * half, sinRow, 0, half);
        for (int x = first; x < first + count; x++) {
            RowOps.ropeAt(vec[x], cosRow, sinRow, cfg.heads(), hd);
        }
    }

    @Override
    public void add(int acc, int x, int count) {
        float[] a = vec[acc], b = vec[x];
        for (int i = 0; i < count; i++) {
            a[i] += b[i];
        }
    }

    @Override
    public void swiglu(int m, int g, int u, int count) {
        RowOps.swiglu(vec[m], vec[g], vec[u], count);
    }

    @Override
    public void attend(int out, int q, int slot, int len, int selfKey, int selfValue) {
        float[] k = kc[slot] == null ? new float[0] : kc[slot], v = vc[slot] == null ? new float[0] : vc[slot];
        RowOps.attendCached(vec[out], vec[q], k, v, len, vec[selfKey], vec[selfValue], cfg.heads(), hd);
    }

    @Override
    public void storeRow(int slot, int row, int l, int t0, int t1) {
        grow(slot, row + 1);
        int at = row * d, n = t1 - t0;
        for (int i = 0; i < d; i++) {
            double sk = 0, sv = 0;
            for (int t = t0; t < t1; t++) {
                sk += vec[DecodeOps.key(cfg, t, l)][i];
                sv += vec[DecodeOps.value(cfg, t, l)][i];
            }
            kc[slot][at + i] = (float) (sk / n);
            vc[slot][at + i] = (float) (sv / n);
        }
    }

    @Override
    public void mergeSlots(int dst, int first, int stride, int count, int rows) {
        grow(dst, rows);
        for (int i = 0; i < rows * d; i++) {
            double sk = 0, sv = 0;
            for (int j = 0; j < count; j++) {
                sk += kc[first + j * stride][i];
                sv += vc[first + j * stride][i];
            }
            kc[dst][i] = (float) (sk / count);
            vc[dst][i] = (float) (sv / count);
        }
    }

    @Override
    public void release(int slot) {
        kc[slot] = null;
        vc[slot] = null;
    }

    @Override
    public float[] read(int v, int count) {
        return Arrays.copyOf(vec[v], count);
    }

    @Override
    public float[] readSlot(int slot, int rows, boolean values) {
        float[] a = values ? vc[slot] : kc[slot];
        return a == null ? new float[rows * d] : Arrays.copyOf(a, rows * d);
    }

    @Override
    public float[] readGates(int count) {
        float[] z = new float[count];
        for (int t = 0; t < count; t++) {
            z[t] = vec[DecodeOps.gate(t)][0];
        }
        return z;
    }

    private void grow(int slot, int rows) {
        if (kc[slot] == null) {
            kc[slot] = new float[Math.max(16, rows) * d];
            vc[slot] = new float[Math.max(16, rows) * d];
        } else if (kc[slot].length < rows * d) {
            int cap = Math.max(rows, 2 * kc[slot].length / d);
            kc[slot] = Arrays.copyOf(kc[slot], cap * d);
            vc[slot] = Arrays.copyOf(vc[slot], cap * d);
        }
    }

    @Override
    public void close() {
    }
}
