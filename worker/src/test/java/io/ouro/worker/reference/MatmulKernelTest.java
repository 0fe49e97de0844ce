package io.ouro.worker.reference;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The SIMD matmul kernel against the plain loop, on shapes that cut across its tiles and blocks. */
class MatmulKernelTest {

    @Test
    void testJvmHasTheVectorApi() {
        assertTrue(Matmul.SIMD, "surefire must run with --add-modules=jdk.incubator.vector");
    }

    @Test
    void simdKernelMatchesScalarLoop() {
        SplittableRandom rng = new SplittableRandom(1);
        int[][] shapes = {{1, 1, 1}, {3, 17, 5}, {37, 530, 131}, {66, 1100, 257}, {5, 2049, 3}};
        for (int[] s : shapes) {
            int n = s[0], k = s[1], o = s[2];
            float[] a = new float[n * k], b = new float[o * k];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) rng.nextGaussian();
            }
            for (int i = 0; i < b.length; i++) {
                b[i] = (float) rng.nextGaussian();
            }
            float[] fast = new float[n * o + 3], slow = new float[n * o + 3];
            for (int i = 0; i < fast.length; i++) {
                fast[i] = slow[i] = i;
            }
            for (boolean accumulate : new boolean[]{false, true}) {
                VectorDot.dotRows(fast, 3, a, 0, b, 0, n, k, o, accumulate);
                Matmul.dotRowsScalar(slow, 3, a, 0, b, 0, n, k, o, accumulate);
                for (int i = 0; i < fast.length; i++) {
                    assertEquals(slow[i], fast[i], 1e-4 * Math.sqrt(k) * (1 + Math.abs(slow[i])),
                            "shape " + n + "x" + k + "x" + o + " element " + i);
                }
            }
        }
    }

    @Test
    void transposeIsExact() {
        float[] m = new float[2 + 70 * 45];
        for (int i = 0; i < m.length; i++) {
            m[i] = i;
        }
        float[] t = Matmul.transpose(m, 2, 70, 45);
        for (int r = 0; r < 70; r++) {
            for (int c = 0; c < 45; c++) {
                assertEquals(m[2 + r * 45 + c], t[c * 70 + r]);
            }
        }
    }
}
