package io.ouro.worker.bench;

import io.ouro.worker.TestData;
import io.ouro.worker.model.AdamW;
import io.ouro.worker.model.DecayPolicy;
import io.ouro.worker.model.GradClip;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.reference.ReferenceModel;
import io.ouro.worker.torch.TorchLoopLM;

import java.util.Arrays;
import java.util.Locale;

/**
 * One full training step (forward, backward, clipping, AdamW) of the Java reference backend and of
 * the PyTorch implementation from the parity tests, on the same model and batch, in one process.
 * Run with {@code tests/bench.sh reference}. The last line is
 * {@code RESULT reference java_tok_s=<x> torch_tok_s=<y> ratio=<x/y>} for the bench shape.
 */
public final class ReferenceStepBench {

    private ReferenceStepBench() {
    }

    record Timing(double msPerStep, double tokPerSec, double gflops, double lastLoss) {
    }

    public static void main(String[] args) {
        int iters = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        System.out.printf(Locale.ROOT, "cores %d, reference backend threads %d%n",
                Runtime.getRuntime().availableProcessors(), io.ouro.worker.util.Parallel.threads());
        run("tiny", LoopConfig.tiny(), 2, 5, 200);
        Timing[] bench = run("bench", LoopConfig.bench(), 4, 128, iters);
        System.out.printf(Locale.ROOT, "RESULT reference java_tok_s=%.1f torch_tok_s=%.1f java_ms=%.1f torch_ms=%.1f ratio=%.3f%n",
                bench[0].tokPerSec(), bench[1].tokPerSec(), bench[0].msPerStep(), bench[1].msPerStep(),
                bench[0].tokPerSec() / bench[1].tokPerSec());
    }

    static Timing[] run(String name, LoopConfig cfg, int batch, int seqLen, int iters) {
        ParamLayout layout = new ParamLayout(cfg);
        int n = batch * seqLen;
        int[] tokens = TestData.tokens(n, cfg.vocab(), 1);
        int[] targets = TestData.targets(n, cfg.vocab(), 2);
        Objective obj = Objective.stageOne(cfg.beta());
        double flops = trainingFlops(cfg, batch, seqLen);
        System.out.printf(Locale.ROOT, "shape %s: %s, batch %d x %d tokens, %.1fM parameters, %.1f GFLOP per step%n",
                name, cfg, batch, seqLen, layout.totalSize() / 1e6, flops / 1e9);

        float[] params = ParamInit.initialize(layout);
        ReferenceModel model = new ReferenceModel(cfg);
        AdamW opt = AdamW.ouro(layout);
        float[] grads = new float[params.length];
        double[] loss = new double[1];
        Runnable javaStep = () -> {
            loss[0] = model.forward(params, tokens, targets, batch, seqLen, obj, false).loss();
            Arrays.fill(grads, 0f);
            model.backward(params, grads);
            GradClip.clip(grads, 1.0);
            opt.step(params, grads, 3e-4, t -> true);
        };
        Timing java = time(javaStep, iters, n, flops, loss);
        System.out.printf(Locale.ROOT, "  java reference: %8.1f ms/step %10.1f tok/s %7.2f GFLOP/s  loss %.4f%n",
                java.msPerStep(), java.tokPerSec(), java.gflops(), java.lastLoss());

        Timing torch;
        try (TorchLoopLM t = new TorchLoopLM(layout)) {
            t.load(ParamInit.initialize(layout));
            DecayPolicy decay = DecayPolicy.defaults();
            Runnable torchStep = () -> {
                loss[0] = t.forwardBackward(tokens, targets, batch, seqLen, obj, true, false).loss();
                t.clipAndStep(3e-4, 0.1, 0.9, 0.95, 1e-8, 1.0, obj, decay::decays);
            };
            torch = time(torchStep, iters, n, flops, loss);
        }
        System.out.printf(Locale.ROOT, "  pytorch (DJL):  %8.1f ms/step %10.1f tok/s %7.2f GFLOP/s  loss %.4f%n",
                torch.msPerStep(), torch.tokPerSec(), torch.gflops(), torch.lastLoss());
        System.out.printf(Locale.ROOT, "  ratio java/torch tokens/s: %.3f%n", java.tokPerSec() / torch.tokPerSec());
        return new Timing[]{java, torch};
    }

    static Timing time(Runnable step, int iters, int tokens, double flops, double[] loss) {
        for (int i = 0; i < Math.max(1, iters / 2); i++) {
            step.run(); // warm-up: JIT, allocation of the workspace
        }
        long t0 = System.nanoTime();
        for (int i = 0; i < iters; i++) {
            step.run();
        }
        double sec = (System.nanoTime() - t0) / 1e9 / iters;
        return new Timing(sec * 1e3, tokens / sec, flops / sec / 1e9, loss[0]);
    }

    /**
     * Model FLOPs of one training step (forward + backward = 3x forward): per token and recurrent
     * step, 2 FLOPs per weight of the L layers, causal attention scores and mixing, the LM head and
     * the gate.
     */
    static double trainingFlops(LoopConfig c, int batch, int seqLen) {
        double d = c.hidden(), perLayer = 2 * (4 * d * d + 3 * d * c.ffn()) + 2 * d * (seqLen + 1);
        double perStep = c.layers() * perLayer + 2 * d * c.vocab() + 2 * d;
        return 3.0 * perStep * c.steps() * batch * seqLen;
    }
}
