package io.ouro.worker.reference;

import io.ouro.worker.util.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The SIMD form of {@link Matmul#dotRows}. The output is cut into tiles of ROW_TILE x COL_TILE, one
 * task each; a tile walks the shared dimension in blocks of K_BLOCK so the slices of {@code a} and
 * {@code b} it reads stay in cache, and it computes four rows of {@code a} against one row of
 * {@code b} at a time with lane-wise fused multiply-adds. Each output element is summed by one task in
 * a fixed order, so results do not depend on the thread count. Loaded only when the JVM runs with
 * {@code --add-modules=jdk.incubator.vector}.
 */
final class VectorDot {

    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int ROW_TILE = 32, COL_TILE = 128, K_BLOCK = 512;

    private VectorDot() {
    }

    // out (N,O) (= or +=) a (N,K) . b (O,K)^T
    static void dotRows(float[] out, int outOff, float[] a, int aOff, float[] b, int bOff,
                        int n, int k, int o, boolean accumulate) {
        int rowTiles = (n + ROW_TILE - 1) / ROW_TILE, colTiles = (o + COL_TILE - 1) / COL_TILE;
        Parallel.range(rowTiles * colTiles, Matmul.grain((long) ROW_TILE * COL_TILE * k), (t0, t1) -> {
            for (int t = t0; t < t1; t++) {
                int r0 = (t / colTiles) * ROW_TILE, r1 = Math.min(n, r0 + ROW_TILE);
                int c0 = (t % colTiles) * COL_TILE, c1 = Math.min(o, c0 + COL_TILE);
                for (int k0 = 0; k0 < k; k0 += K_BLOCK) {
                    int k1 = Math.min(k, k0 + K_BLOCK);
                    boolean acc = accumulate || k0 > 0;
                    int r = r0;
                    for (; r + 4 <= r1; r += 4) {
                        quad(out, outOff, a, aOff, b, bOff, r, k, o, c0, c1, k0, k1, acc);
                    }
                    for (; r < r1; r++) {
                        single(out, outOff, a, aOff, b, bOff, r, k, o, c0, c1, k0, k1, acc);
                    }
                }
            }
        });
    }

    private static void quad(float[] out, int outOff, float[] a, int aOff, float[] b, int bOff, int r, int k, int o,
                             int c0, int c1, int k0, int k1, boolean accumulate) {
        int lanes = SPECIES.length(), bound = k0 + SPECIES.loopBound(k1 - k0);
        int a0 = aOff + r * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
        for (int c = c0; c < c1; c++) {
            int br = bOff + c * k;
            FloatVector s0 = FloatVector.zero(SPECIES), s1 = s0, s2 = s0, s3 = s0;
            int i = k0;
            for (; i < bound; i += lanes) {
                FloatVector bv = FloatVector.fromArray(SPECIES, b, br + i);
                s0 = FloatVector.fromArray(SPECIES, a, a0 + i).fma(bv, s0);
                s1 = FloatVector.fromArray(SPECIES, a, a1 + i).fma(bv, s1);
                s2 = FloatVector.fromArray(SPECIES, a, a2 + i).fma(bv, s2);
                s3 = FloatVector.fromArray(SPECIES, a, a3 + i).fma(bv, s3);
            }
            float t0 = s0.reduceLanes(VectorOperators.ADD), t1 = s1.reduceLanes(VectorOperators.ADD);
            float t2 = s2.reduceLanes(VectorOperators.ADD), t3 = s3.reduceLanes(VectorOperators.ADD);
            for (; i < k1; i++) {
                float bi = b[br + i];
                t0 += a[a0 + i] * bi;
                t1 += a[a1 + i] * bi;
                t2 += a[a2 + i] * bi;
                t3 += a[a3 + i] * bi;
            }
            int oi = outOff + r * o + c;
            if (accumulate) {
                out[oi] += t0;
                out[oi + o] += t1;
                out[oi + 2 * o] += t2;
                out[oi + 3 * o] += t3;
            } else {
                out[oi] = t0;
                out[oi + o] = t1;
                out[oi + 2 * o] = t2;
                out[oi + 3 * o] = t3;
            }
        }
    }

    private static void single(float[] out, int outOff, float[] a, int aOff, float[] b, int bOff, int r, int k, int o,
                               int c0, int c1, int k0, int k1, boolean accumulate) {
        int lanes = SPECIES.length(), bound = k0 + SPECIES.loopBound(k1 - k0);
        int ar = aOff + r * k;
        for (int c = c0; c < c1; c++) {
            int br = bOff + c * k;
            FloatVector s = FloatVector.zero(SPECIES);
            int i = k0;
            for (; i < bound; i += lanes) {
                s = FloatVector.fromArray(SPECIES, a, ar + i).fma(FloatVector.fromArray(SPECIES, b, br + i), s);
            }
            float t = s.reduceLanes(VectorOperators.ADD);
            for (; i < k1; i++) {
                t += a[ar + i] * b[br + i];
            }
            int oi = outOff + r * o + c;
            out[oi] = accumulate ? out[oi] + t : t;
        }
    }
}
