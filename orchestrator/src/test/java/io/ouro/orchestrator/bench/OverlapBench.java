package io.ouro.orchestrator.bench;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.train.LocalRanks;
import io.ouro.orchestrator.train.StepMetrics;
import io.ouro.worker.data.Sampler;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * {@code tests/bench.sh overlap}: the data-parallel step of a model whose gradient exchange is a visible share of
 * the step (d 512, 8 layers, T 2 by default: 26M parameters, a 105 MB gradient), with W = 1 and with W = 2 ranks
 * (threads of this JVM, the TCP ring on 127.0.0.1, the same per-rank batch). From W = 2's rank 0: the time the
 * exchange kept a ring busy, the share of it that ran behind the backward, and the time the step waited for it
 * after the backward; the step time with W = 2 over W = 1. Both ranks share this machine's cores, so the ratio also
 * counts the second rank's compute competing with the first's, which separate GPUs would not.
 *
 * <p>Args: [device opencl:0] [timed steps 3] [hidden 512] [layers 8] [seq 128] [loop steps 2] [connections 2]
 * [bucket MiB 8] [shard_optimizer false]
 */
public final class OverlapBench {

    public static void main(String[] args) throws Exception {
        String device = arg(args, 0, "opencl:0");
        int steps = Integer.parseInt(arg(args, 1, "3"));
        int d = Integer.parseInt(arg(args, 2, "512"));
        int layers = Integer.parseInt(arg(args, 3, "8"));
        int seq = Integer.parseInt(arg(args, 4, "128"));
        int loops = Integer.parseInt(arg(args, 5, "2"));
        int connections = Integer.parseInt(arg(args, 6, "2"));
        int bucketMib = Integer.parseInt(arg(args, 7, "8"));
        boolean shard = Boolean.parseBoolean(arg(args, 8, "false"));
        TrainConfig cfg = TrainConfig.parse("overlap.yaml", """
                model: {preset: small, vocab: 4096, hidden: %d, layers: %d, heads: 8, ffn: %d, recurrent_steps: %d}
                data: {synthetic: {tokens: 100000}}
                train: {workers: 2, device: %s, clip: 1.0, ring_connections: %d, bucket_mib: %d, shard_optimizer: %s}
                stages:
                  - {name: main, steps: 1000, seq_len: %d, batch_per_worker: 1, lr: {peak: 0.0001, schedule: constant}}
                """.formatted(d, layers, d * 8 / 3 / 64 * 64, loops, device, connections, bucketMib, shard, seq));
        Stage stage = cfg.stages().get(0);
        long params = new io.ouro.worker.model.ParamLayout(stage.model()).totalSize();
        System.out.printf(Locale.ROOT, "overlap bench: d %d, %d layers, T %d, seq %d, 1 sequence per rank, %d parameters "
                        + "(%.0f MB of gradient), %s, %d connection(s) per neighbour, buckets of %d MiB, %s optimizer%n",
                d, layers, loops, seq, params, params * 4 / 1e6, device, connections, bucketMib,
                shard ? "ZeRO-1" : "replicated");
        List<StepMetrics> one = run(cfg, stage, 1, device, steps);
        List<StepMetrics> two = run(cfg, stage, 2, device, steps);
        double w1 = median(one.stream().mapToDouble(StepMetrics::wallMs).toArray());
        double w2 = median(two.stream().mapToDouble(StepMetrics::wallMs).toArray());
        double exchange = median(two.stream().mapToDouble(StepMetrics::exchangeMs).toArray());
        double hidden = median(two.stream().mapToDouble(StepMetrics::hidden).toArray());
        double waited = median(two.stream().mapToDouble(StepMetrics::commMs).toArray());
        // ZeRO-1: the all-gather each step's forward read (none before a segment's first step)
        double[] gatherMs = two.stream().mapToDouble(StepMetrics::gatherMs).filter(x -> !Double.isNaN(x)).toArray();
        double[] gatherHidden = two.stream().mapToDouble(StepMetrics::gatherHidden).filter(x -> !Double.isNaN(x))
                .toArray();
        double gather = gatherMs.length == 0 ? Double.NaN : median(gatherMs);
        double gHidden = gatherHidden.length == 0 ? Double.NaN : median(gatherHidden);
        for (StepMetrics m : two) {
            System.out.println("W=2 " + m.line("main", 0, 0));
        }
        System.out.printf(Locale.ROOT, "W=1 step %.0f ms; W=2 step %.0f ms, exchange %.0f ms of ring time, %.0f%% of it "
                + "behind the backward, the step waited %.0f ms after its backward (medians of %d steps)%n",
                w1, w2, exchange, 100 * hidden, waited, steps);
        System.out.printf(Locale.ROOT, "RESULT overlap hidden=%.3f exchange_ms=%.0f waited_ms=%.0f step_w1_ms=%.0f "
                        + "step_w2_ms=%.0f params=%d connections=%d ratio=%.3f gather_ms=%.1f gather_hidden=%.3f%n",
                hidden, exchange, waited, w1, w2, params, connections, w2 / w1, gather, gHidden);
    }

    /** {@code steps} timed steps (after one untimed) with {@code world} ranks; rank 0's metrics. */
    @SuppressWarnings("unchecked")
    static List<StepMetrics> run(TrainConfig cfg, Stage stage, int world, String device, int steps)
            throws Exception {
        List<Object> out = LocalRanks.train(cfg, stage, world, device, cfg.train().ringConnections(),
                cfg.train().bucketFloats(), cfg.train().shardOptimizer(), 1, steps + 1,
                (s, rank, rows) -> batch(stage, s, rank), Duration.ofSeconds(600));
        List<StepMetrics> m = (List<StepMetrics>) out.get(0);
        return m.subList(1, m.size());
    }

    static Sampler.Batch batch(Stage stage, long s, int rank) {
        int len = stage.seqLen(), vocab = stage.model().vocab();
        SplittableRandom r = new SplittableRandom(s * 7919 + rank);
        int[] tok = new int[len], tgt = new int[len];
        for (int i = 0; i < len; i++) {
            tok[i] = r.nextInt(vocab);
            tgt[i] = r.nextInt(vocab);
        }
        return new Sampler.Batch(s, 1, len, tok, tgt);
    }

    static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        return s.length == 0 ? Double.NaN : s[s.length / 2];
    }

    private static String arg(String[] a, int i, String dflt) {
        return a.length > i ? a[i] : dflt;
    }
}
