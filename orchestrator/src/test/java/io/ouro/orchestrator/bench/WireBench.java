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
 * {@code tests/bench.sh wire}: the bench model of {@code tests/bench.sh overlap} (d 512, 8 layers, T 2, vocabulary
 * 4096, 128 tokens a sequence: 26M parameters) trained at W = 2 (ranks on threads, the TCP ring on 127.0.0.1) with
 * the gradients exchanged in fp32 and then in bf16 ({@code train.exchange_dtype}), from the same initial weights on
 * the same batches: how far the bf16 wire takes the losses and the weights from the fp32 wire's, and whether both
 * ranks stay bit-identical. The batches follow a fixed rule (each target is a function of its token), so the loss
 * falls and the comparison is over a run that learns.
 *
 * <p>Args: [device java] [steps 30] [lr 0.001]
 */
public final class WireBench {

    public static void main(String[] args) throws Exception {
        String device = args.length > 0 ? args[0] : "java";
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 30;
        double lr = args.length > 2 ? Double.parseDouble(args[2]) : 0.001;
        Object[] fp = run("fp32", device, steps, lr), bf = run("bf16", device, steps, lr);
        @SuppressWarnings("unchecked")
        List<StepMetrics> mf = (List<StepMetrics>) fp[0], mb = (List<StepMetrics>) bf[0];
        float[] wf = (float[]) fp[1], wb = (float[]) bf[1];
        double worstLoss = 0, worstW = 0, maxW = 0;
        for (int s = 0; s < steps; s++) {
            worstLoss = Math.max(worstLoss, Math.abs(mf.get(s).loss() - mb.get(s).loss()) / mf.get(s).loss());
            System.out.printf(Locale.ROOT, "step %d: loss fp32 wire %.6f, bf16 wire %.6f%n", s, mf.get(s).loss(),
                    mb.get(s).loss());
        }
        for (int i = 0; i < wf.length; i++) {
            worstW = Math.max(worstW, Math.abs(wf[i] - wb[i]));
            maxW = Math.max(maxW, Math.abs(wf[i]));
        }
        boolean identical = Arrays.equals(wb, (float[]) bf[2]) && Arrays.equals(wf, (float[]) fp[2]);
        System.out.printf(Locale.ROOT, "RESULT wire steps=%d first_loss=%.4f final_loss_fp32=%.6f final_loss_bf16=%.6f "
                        + "loss_rel_diff_max=%.3e weight_diff_max=%.3e weight_diff_lr=%.3f ranks_identical=%d ratio=%.6f%n",
                steps, mf.get(0).loss(), mf.get(steps - 1).loss(), mb.get(steps - 1).loss(), worstLoss, worstW,
                worstW / lr, identical ? 1 : 0, mb.get(steps - 1).loss() / mf.get(steps - 1).loss());
    }

    // rank 0's metrics, then both ranks' final weights
    @SuppressWarnings("unchecked")
    static Object[] run(String dtype, String device, int steps, double lr) throws Exception {
        TrainConfig cfg = TrainConfig.parse("wire.yaml", """
                model: {preset: small, vocab: 4096, hidden: 512, layers: 8, heads: 8, ffn: 1344, recurrent_steps: 2}
                data: {synthetic: {tokens: 100000}}
                train: {workers: 2, device: %s, clip: 1.0, exchange_dtype: %s}
                stages:
                  - {name: main, steps: 1000, seq_len: 128, batch_per_worker: 1, lr: {peak: %s, schedule: constant}}
                """.formatted(device, dtype, lr));
        Stage stage = cfg.stages().get(0);
        List<Object> out = LocalRanks.train(cfg, stage, 2, device, 1, cfg.train().bucketFloats(), false, 1, steps,
                (s, rank, rows) -> batch(stage, s, rank), Duration.ofSeconds(600));
        return new Object[] {out.get(0), out.get(1), out.get(3)};
    }

    // a sequence whose every target is its token's image under a fixed rule: learnable, so the loss falls
    static Sampler.Batch batch(Stage stage, long s, int rank) {
        int len = stage.seqLen(), vocab = stage.model().vocab();
        SplittableRandom r = new SplittableRandom(s * 7919 + rank);
        int[] tok = new int[len], tgt = new int[len];
        for (int i = 0; i < len; i++) {
            tok[i] = r.nextInt(vocab);
            tgt[i] = (tok[i] * 5 + 3) % vocab;
        }
        return new Sampler.Batch(s, 1, len, tok, tgt);
    }
}
