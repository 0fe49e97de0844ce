package io.ouro.worker.bench;

import io.ouro.worker.comm.CommStats;
import io.ouro.worker.comm.LinkBandwidth;
import io.ouro.worker.comm.LocalRing;
import io.ouro.worker.comm.RingAllReduce;
import io.ouro.worker.comm.RingConfig;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;

/**
 * Ring all-reduce on 127.0.0.1 against the bandwidth-optimal time. Ranks are threads of this JVM.
 *
 * <p>Model: each rank must send (and receive) 2(W-1)/W of the buffer, and in a ring every link
 * carries that much at the same time, so {@code T_opt = 2(W-1)/W * bytes / bw}, where bw is the
 * per-link bandwidth of our framing ({@link LinkBandwidth}) measured with W links streaming at once
 * (the ring's W links share this machine's cores). The single-link bandwidth (one sender, one
 * receiver, nothing else running) is printed too, with the ratio it would give.
 *
 * <p>Run with {@code tests/bench.sh allreduce [rounds] [maxMiB] [chunkKiB]}. The last line is
 * {@code RESULT allreduce ratio=<worst of W=2,4 measured/optimal at the largest size> ...}.
 */
public final class AllReduceBench {

    private AllReduceBench() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        int maxMiB = args.length > 1 ? Integer.parseInt(args[1]) : 256;
        int chunkBytes = args.length > 2 ? Integer.parseInt(args[2]) * 1024 : RingConfig.DEFAULT_CHUNK_BYTES;
        List<Integer> sizes = new ArrayList<>();
        for (int mib = 1; mib <= maxMiB; mib *= 4) {
            sizes.add(mib);
        }
        int largest = sizes.get(sizes.size() - 1);
        int largestFloats = largest * (1 << 20) / 4;
        double largestBytes = largest * (double) (1 << 20);
        System.out.printf(Locale.ROOT, "cores %d, max heap %d MiB, chunk %d KiB, sizes %s MiB; at %d MiB, %d rounds of "
                        + "(1 link, W links, ring) interleaved, medians%n", Runtime.getRuntime().availableProcessors(),
                Runtime.getRuntime().maxMemory() >> 20, chunkBytes >> 10, sizes, largest, rounds);

        int[] worlds = {2, 4};
        double[] p2p = new double[worlds.length];
        double[] linkBw = new double[worlds.length];
        double[] ratio = new double[worlds.length];
        double[] ratioSingle = new double[worlds.length];
        double[] largestMs = new double[worlds.length];
        for (int wi = 0; wi < worlds.length; wi++) {
            int w = worlds[wi];
            double share = 2.0 * (w - 1) / w;
            List<RingAllReduce> ranks = LocalRing.open(w, chunkBytes, Duration.ofSeconds(60), Duration.ofSeconds(60));
            try (LinkBandwidth one = new LinkBandwidth(1, largestFloats, chunkBytes);
                 LinkBandwidth many = new LinkBandwidth(w, largestFloats, chunkBytes)) {
                float[][] bufs = new float[w][largestFloats];
                // Largest size: the ring and both link measurements alternate, so load from other
                // processes on this machine hits all three alike; each round gives its own ratio.
                one.transferSeconds();
                many.transferSeconds();
                time(ranks, bufs, largestFloats);
                double[] oneS = new double[rounds];
                double[] manyS = new double[rounds];
                double[] ringS = new double[rounds];
                double[] r = new double[rounds];
                double[] r1 = new double[rounds];
                for (int i = 0; i < rounds; i++) {
                    oneS[i] = one.transferSeconds();
                    manyS[i] = many.transferSeconds();
                    ringS[i] = time(ranks, bufs, largestFloats);
                    r[i] = ringS[i] / (share * manyS[i]);
                    r1[i] = ringS[i] / (share * oneS[i]);
                }
                p2p[wi] = largestBytes / median(oneS) / 1e9;
                linkBw[wi] = largestBytes / median(manyS) / 1e9;
                ratio[wi] = median(r);
                ratioSingle[wi] = median(r1);
                largestMs[wi] = median(ringS) * 1e3;
                System.out.printf(Locale.ROOT, "%nW=%d: point-to-point at %d MiB: 1 link %.3f GB/s; %d concurrent links %.3f GB/s "
                        + "per link (%.3f GB/s in all)%n", w, largest, p2p[wi], w, linkBw[wi], w * linkBw[wi]);
                System.out.printf(Locale.ROOT, "W=%d: ratio per round %s%n", w, Arrays.toString(
                        Arrays.stream(r).map(x -> Math.round(x * 1000) / 1000.0).toArray()));
                System.out.printf(Locale.ROOT, "%-3s %8s %10s %10s %12s %10s %10s %10s %10s %10s%n", "W", "MiB",
                        "median_ms", "min_ms", "rank0_sent", "framing_B", "busbw_GB/s", "opt_ms", "ratio", "opt1_ms");
                for (int si = 0; si < sizes.size(); si++) {
                    int n = sizes.get(si) * (1 << 20) / 4;
                    double[] t;
                    CommStats before = ranks.get(0).stats();
                    int reps;
                    if (si == sizes.size() - 1) {
                        t = ringS;
                        reps = 0;
                    } else {
                        reps = Math.max(rounds, (int) Math.min(50, 256L / sizes.get(si)));
                        t = new double[reps];
                        time(ranks, bufs, n); // warm-up
                        before = ranks.get(0).stats();
                        for (int i = 0; i < reps; i++) {
                            t[i] = time(ranks, bufs, n);
                        }
                    }
                    CommStats after = ranks.get(0).stats();
                    double bytes = n * 4.0;
                    double med = median(t);
                    double optMs = share * bytes / (linkBw[wi] * 1e9) * 1e3;
                    double opt1Ms = share * bytes / (p2p[wi] * 1e9) * 1e3;
                    String sent = reps == 0 ? "-" : String.valueOf((after.payloadBytesSent() - before.payloadBytesSent()) / reps);
                    String framing = reps == 0 ? "-" : String.valueOf((after.framingBytesSent() - before.framingBytesSent()) / reps);
                    System.out.printf(Locale.ROOT, "%-3d %8d %10.2f %10.2f %12s %10s %10.3f %10.2f %10.3f %10.2f%n", w,
                            sizes.get(si), med * 1e3, Arrays.stream(t).min().orElseThrow() * 1e3, sent, framing,
                            share * bytes / med / 1e9, optMs,
                            si == sizes.size() - 1 ? ratio[wi] : med * 1e3 / optMs, opt1Ms);
                }
            } finally {
                LocalRing.closeAll(ranks);
            }
        }
        System.out.printf(Locale.ROOT, "%nmodel: T_opt = 2(W-1)/W * bytes / bw, bw = per-link bandwidth with W links streaming "
                + "at once (ratio); with the bandwidth of one link alone the ratios would be W=2 %.3f, W=4 %.3f%n",
                ratioSingle[0], ratioSingle[1]);
        System.out.printf(Locale.ROOT, "RESULT allreduce ratio=%.3f w2_ms=%.1f w4_ms=%.1f p2p_gb_s=%.3f w2_link_gb_s=%.3f "
                        + "w4_link_gb_s=%.3f w2_ratio=%.3f w4_ratio=%.3f w2_ratio_1link=%.3f w4_ratio_1link=%.3f mib=%d%n",
                Math.max(ratio[0], ratio[1]), largestMs[0], largestMs[1], (p2p[0] + p2p[1]) / 2, linkBw[0], linkBw[1],
                ratio[0], ratio[1], ratioSingle[0], ratioSingle[1], largest);
    }

    /** One all-reduce of n floats on every rank; wall time from the common start to the last rank done. */
    private static double time(List<RingAllReduce> ranks, float[][] bufs, int n) {
        int w = ranks.size();
        for (int r = 0; r < w; r++) {
            Arrays.fill(bufs[r], 0, n, r + 1);
        }
        CyclicBarrier start = new CyclicBarrier(w);
        List<long[]> spans = LocalRing.parallel(w, r -> {
            try {
                start.await(60, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
            long t0 = System.nanoTime();
            ranks.get(r).allReduceSum(bufs[r], 0, n);
            return new long[] {t0, System.nanoTime()};
        });
        float expected = w * (w + 1) / 2f;
        for (int r = 0; r < w; r++) {
            if (bufs[r][0] != expected || bufs[r][n / 2] != expected || bufs[r][n - 1] != expected) {
                throw new IllegalStateException("rank " + r + ": wrong sum");
            }
        }
        long first = spans.stream().mapToLong(s -> s[0]).min().orElseThrow();
        long last = spans.stream().mapToLong(s -> s[1]).max().orElseThrow();
        return (last - first) / 1e9;
    }

    private static double median(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
