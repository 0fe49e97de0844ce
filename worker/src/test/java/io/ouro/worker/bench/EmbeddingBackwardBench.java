package io.ouro.worker.bench;

import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.opencl.DeviceOp;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClOps;
import io.ouro.worker.opencl.OpenClOps.Buffer;

import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The embedding backward's two kernels at one micro-batch of Ouro-1.4B: the translated op (an item per column walking
 * every row) and the one over the token index (reduce.cl: an item per (column, distinct token)), ms per launch, and
 * their gradients compared bit for bit. The token ids follow Zipf's law with exponent 1 over the vocabulary (a
 * stand-in for text: a few tokens take many rows, most appear once or not at all), fixed seed.
 *
 * <p>Args: [device, default opencl:0] [rows 16384] [width 2048] [vocabulary 49152] [repetitions 3].
 */
public final class EmbeddingBackwardBench {

    private EmbeddingBackwardBench() {
    }

    public static void main(String[] args) {
        String dev = args.length > 0 ? args[0] : "opencl:0";
        int rows = args.length > 1 ? Integer.parseInt(args[1]) : 16_384;
        int width = args.length > 2 ? Integer.parseInt(args[2]) : 2_048;
        int vocab = args.length > 3 ? Integer.parseInt(args[3]) : 49_152;
        int reps = args.length > 4 ? Integer.parseInt(args[4]) : 3;
        var device = OpenClDevices.select(DeviceSpec.parse(dev));
        int table = Math.multiplyExact(vocab, width);
        int[] tokens = zipf(rows, vocab, new SplittableRandom(17));
        int[] counts = new int[vocab];
        int distinct = 0, most = 0;
        for (int t : tokens) {
            distinct += counts[t]++ == 0 ? 1 : 0;
            most = Math.max(most, counts[t]);
        }
        System.out.printf(Locale.ROOT, "%d rows x %d, vocabulary %d: %d distinct tokens, the most frequent on %d rows; "
                + "load %s%n", rows, width, vocab, distinct, most, LoadAverage.line());
        try (OpenClOps ops = new OpenClOps(device, new int[]{table}, new int[]{1}, (long) rows * width, 1, rows,
                new int[0], true, MatmulPrecision.FP32)) {
            SplittableRandom rng = new SplittableRandom(3);
            float[] act = ops.host(Buffer.ACT);
            for (int i = 0; i < rows * width; i++) {
                act[i] = (float) rng.nextGaussian();
            }
            ops.upload(Buffer.ACT);
            System.arraycopy(tokens, 0, ops.hostInts(Buffer.TOKENS), 0, rows);
            double[] indexMs = new double[reps + 1];
            for (int r = 0; r <= reps; r++) {
                long t0 = System.nanoTime();
                ops.upload(Buffer.TOKENS); // builds the index on the host
                indexMs[r] = (System.nanoTime() - t0) / 1e6;
            }
            float[][] grads = new float[2][];
            double[][] ms = new double[2][reps];
            for (int kernel = 0; kernel < 2; kernel++) {
                ops.useReduction(kernel == 1);
                ops.fill(OpenClOps.grads(0), 0, table, 0f);
                ops.embedBackward(0, 0, 0, rows, width); // the first launch, which the timing leaves out
                ops.download(OpenClOps.grads(0));
                grads[kernel] = Arrays.copyOf(ops.read(OpenClOps.grads(0)), table);
                ops.startProfile();
                for (int r = 0; r < reps; r++) {
                    long s = System.nanoTime();
                    ops.embedBackward(0, 0, 0, rows, width);
                    ms[kernel][r] = (System.nanoTime() - s) / 1e6;
                }
                String name = (kernel == 1 ? DeviceOp.CL_EMBED_BWD : DeviceOp.EMBED_BWD).profileName();
                if (ops.profile().get(name)[1] != reps) {
                    throw new IllegalStateException(name + " did not run " + reps + " times: " + ops.profile().keySet());
                }
            }
            boolean same = Arrays.equals(grads[0], grads[1]);
            System.out.printf(Locale.ROOT, "translated ms per launch %s; by token %s; index built on the host in %s ms "
                    + "(the first call cold); gradients bit-identical: %b; load %s%n", Arrays.toString(round(ms[0])),
                    Arrays.toString(round(ms[1])), Arrays.toString(round(indexMs)), same, LoadAverage.line());
            System.out.printf(Locale.ROOT, "RESULT embedding rows=%d width=%d vocab=%d distinct=%d translated_ms=%.1f "
                    + "by_token_ms=%.1f identical=%b ratio=%.2f%n", rows, width, vocab, distinct, median(ms[0]),
                    median(ms[1]), same, median(ms[1]) / median(ms[0]));
            if (!same) {
                throw new IllegalStateException("the two kernels' gradients differ");
            }
        }
    }

    // n draws of Zipf's law, P(t) proportional to 1 / (t + 1), by inverting its cumulative distribution
    private static int[] zipf(int n, int vocab, SplittableRandom rng) {
        double[] cdf = new double[vocab];
        double s = 0;
        for (int t = 0; t < vocab; t++) {
            s += 1.0 / (t + 1);
            cdf[t] = s;
        }
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            int at = Arrays.binarySearch(cdf, rng.nextDouble() * s);
            out[i] = Math.min(vocab - 1, at >= 0 ? at : -at - 1);
        }
        return out;
    }

    private static double[] round(double[] a) {
        double[] r = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            r[i] = Math.round(a[i] * 10) / 10.0;
        }
        return r;
    }

    private static double median(double[] a) {
        double[] s = a.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
