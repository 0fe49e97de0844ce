package io.ouro.worker.bench;

import io.ouro.worker.TestData;
import io.ouro.worker.backend.Backends;
import io.ouro.worker.infer.DecodeOps;
import io.ouro.worker.infer.Decoder;
import io.ouro.worker.infer.ExitPolicy;
import io.ouro.worker.infer.KvCache;
import io.ouro.worker.infer.TokenSampler;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.opencl.OpenClDecodeOps;
import io.ouro.worker.torch.TorchLoopLM;

import java.util.Arrays;
import java.util.Locale;
import java.util.Map;

/**
 * Greedy decoding with a KV cache on the bench model (the {@code step} bench's shape), ours (the one {@link Decoder}
 * over the device's {@link DecodeOps}) and PyTorch (the parity tests' independent implementation, DJL, with its own KV
 * cache per (step, layer)), in one process on the same weights and prompt. Every token runs all T loop steps (HF Ouro's
 * decoding); the prompt is fed token by token on both sides, and only the new tokens are timed. The greedy tokens of
 * both are compared. Ours runs on the device's default path (on a CPU device each loop step is one launch, see
 * {@code OpenClDecodeOps.fuseSteps}) and again with one launch per op, then with the {@code last_step} and
 * {@code average} caches, whose memory is reported against {@code full}. Run with {@code tests/bench.sh generate [device] [new tokens] [prompt tokens]}; the
 * last line is {@code RESULT generate ours_tok_s=<x> torch_tok_s=<y> ratio=<x/y> ...}.
 */
public final class GenerateBench {

    private GenerateBench() {
    }

    /** What one decoding run produced. */
    record Run(int[] tokens, double tokPerSec, long cacheBytes, long deviceBytes, float[][] logits) {
    }

    public static void main(String[] args) {
        String device = args.length > 0 ? args[0] : "opencl:0";
        int maxNew = args.length > 1 ? Integer.parseInt(args[1]) : 32;
        int promptLen = args.length > 2 ? Integer.parseInt(args[2]) : 16;
        LoopConfig cfg = LoopConfig.bench();
        ParamLayout layout = new ParamLayout(cfg);
        // the initialization, with the final norm's weight scaled up so that the logits (and the greedy tokens) are
        // not nearly flat, as in a trained model
        float[] params = ParamInit.initialize(layout);
        for (int i = layout.finalNorm().off(); i < layout.finalNorm().off() + layout.finalNorm().len(); i++) {
            params[i] *= 50;
        }
        int[] prompt = TestData.tokens(promptLen, cfg.vocab(), 1);
        System.out.printf(Locale.ROOT, "bench shape: %s, %.1fM parameters; prompt %d tokens, %d new tokens, greedy, "
                + "every token all %d steps%n", cfg, layout.totalSize() / 1e6, promptLen, maxNew, cfg.steps());

        Run ours = null, last = null, avg = null, perOp = null;
        for (KvCache.Mode mode : KvCache.Mode.values()) {
            try (DecodeOps ops = Backends.decoder(device, cfg, params, mode, promptLen, maxNew)) {
                ours(ops, prompt, Math.min(maxNew, 8), mode); // warm-up: kernels built, the host side compiled
                OpenClDecodeOps cl = ops instanceof OpenClDecodeOps o ? o : null;
                if (cl != null && mode == KvCache.Mode.FULL) {
                    cl.device().startProfile();
                }
                Run r = ours(ops, prompt, maxNew, mode);
                System.out.printf(Locale.ROOT, "ours (%s) %-9s %8.2f tok/s  KV cache %,d bytes (device buffers %,d "
                                + "bytes)%n", device, mode.name().toLowerCase(Locale.ROOT), r.tokPerSec(), r.cacheBytes(),
                        r.deviceBytes());
                if (cl != null && mode == KvCache.Mode.FULL) {
                    profile(cl.device().profile(), promptLen + maxNew);
                    // the same decoding with one launch per op (the path GPUs take), for comparison
                    boolean fused = cl.fused();
                    cl.fuseSteps(false);
                    perOp = ours(ops, prompt, maxNew, mode);
                    cl.fuseSteps(fused);
                    System.out.printf(Locale.ROOT, "ours (%s) full, one launch per op (fused step was %s) %8.2f tok/s%n",
                            device, fused ? "on" : "off", perOp.tokPerSec());
                }
                switch (mode) {
                    case FULL -> ours = r;
                    case LAST_STEP -> last = r;
                    default -> avg = r;
                }
            }
        }
        // PyTorch as HF generate runs it (no autograd), at its default thread count and at one thread: the faster
        // counts (on a small CPU shared with other work, one thread can win)
        Run torch = null;
        ai.djl.engine.Engine.getEngine("PyTorch"); // loads the native library
        int threads = ai.djl.pytorch.jni.JniUtils.getNumThreads();
        boolean grad = ai.djl.pytorch.jni.JniUtils.isGradMode();
        ai.djl.pytorch.jni.JniUtils.setGradMode(false);
        for (int th : threads > 1 ? new int[] {threads, 1} : new int[] {threads}) {
            ai.djl.pytorch.jni.JniUtils.setNumThreads(th);
            Run r = torch(layout, params, prompt, maxNew);
            System.out.printf(Locale.ROOT, "pytorch   full      %8.2f tok/s  KV cache %,d bytes (%d threads)%n",
                    r.tokPerSec(), r.cacheBytes(), th);
            if (torch == null || r.tokPerSec() > torch.tokPerSec()) {
                torch = r;
            }
        }
        ai.djl.pytorch.jni.JniUtils.setNumThreads(threads);
        ai.djl.pytorch.jni.JniUtils.setGradMode(grad);
        int same = 0;
        while (same < maxNew && ours.tokens()[same] == torch.tokens()[same]) {
            same++;
        }
        // logits of the steps both computed on the same inputs (the prompt's last token, then the agreed tokens)
        double worst = 0;
        for (int i = 0; i <= Math.min(same, maxNew - 1); i++) {
            for (int j = 0; j < cfg.vocab(); j++) {
                worst = Math.max(worst, Math.abs(ours.logits()[i][j] - torch.logits()[i][j]));
            }
        }
        System.out.printf(Locale.ROOT, "greedy tokens: ours and PyTorch agree on the first %d of %d; their logits on the "
                + "same inputs differ by at most %.2e%n", same, maxNew, worst);
        System.out.println("ours  " + Arrays.toString(ours.tokens()));
        System.out.println("torch " + Arrays.toString(torch.tokens()));
        System.out.printf(Locale.ROOT, "KV cache after %d tokens: full %,d bytes, last_step %,d (%.1fx less), average %,d "
                        + "(%.1fx less)%n", promptLen + maxNew - 1, ours.cacheBytes(), last.cacheBytes(),
                (double) ours.cacheBytes() / last.cacheBytes(), avg.cacheBytes(), (double) ours.cacheBytes() / avg.cacheBytes());
        System.out.printf(Locale.ROOT, "RESULT generate ours_tok_s=%.2f torch_tok_s=%.2f per_op_tok_s=%.2f "
                        + "last_step_tok_s=%.2f full_cache_bytes=%d last_step_cache_bytes=%d average_cache_bytes=%d "
                        + "same_tokens=%d/%d ratio=%.3f%n",
                ours.tokPerSec(), torch.tokPerSec(), perOp == null ? Double.NaN : perOp.tokPerSec(), last.tokPerSec(),
                ours.cacheBytes(), last.cacheBytes(), avg.cacheBytes(), same, maxNew, ours.tokPerSec() / torch.tokPerSec());
    }

    static Run ours(DecodeOps ops, int[] prompt, int maxNew, KvCache.Mode mode) {
        Decoder dec = new Decoder(ops, mode);
        Decoder.Token tok = null;
        for (int p : prompt) {
            tok = dec.next(p, ExitPolicy.all(), true, false);
        }
        dec.cache().share();
        float[][] logits = new float[maxNew][];
        TokenSampler greedy = TokenSampler.greedy();
        int[] out = new int[maxNew];
        long t0 = System.nanoTime();
        for (int i = 0; i < maxNew; i++) {
            logits[i] = tok.logits();
            out[i] = greedy.pick(tok.logits());
            if (i + 1 < maxNew) {
                tok = dec.next(out[i], ExitPolicy.all(), false, false);
            }
        }
        double sec = (System.nanoTime() - t0) / 1e9;
        long device = ops instanceof OpenClDecodeOps o ? o.deviceBytes() : 0;
        return new Run(out, maxNew / sec, dec.cache().bytes(), device, logits);
    }

    static Run torch(ParamLayout layout, float[] params, int[] prompt, int maxNew) {
        try (TorchLoopLM t = new TorchLoopLM(layout)) {
            t.load(params);
            try (TorchLoopLM.Decode warm = t.decode()) {
                warm.next(prompt[0]);
                warm.next(prompt[1]);
            }
            try (TorchLoopLM.Decode dec = t.decode()) {
                float[] logits = null;
                for (int p : prompt) {
                    logits = dec.next(p);
                }
                float[][] kept = new float[maxNew][];
                TokenSampler greedy = TokenSampler.greedy();
                int[] out = new int[maxNew];
                long t0 = System.nanoTime();
                for (int i = 0; i < maxNew; i++) {
                    kept[i] = logits;
                    out[i] = greedy.pick(logits);
                    if (i + 1 < maxNew) {
                        logits = dec.next(out[i]);
                    }
                }
                double sec = (System.nanoTime() - t0) / 1e9;
                return new Run(out, maxNew / sec, dec.cacheBytes(), 0, kept);
            }
        }
    }

    static void profile(Map<String, long[]> prof, int tokens) {
        double total = 0;
        for (long[] v : prof.values()) {
            total += v[0];
        }
        System.out.printf(Locale.ROOT, "  per-op device time per token (%d tokens, %.2f ms/token in kernels):%n", tokens,
                total / 1e6 / tokens);
        for (Map.Entry<String, long[]> e : prof.entrySet()) {
            System.out.printf(Locale.ROOT, "    %-24s %8.3f ms %5.1f%%  (%.1f launches, %.1f us each)%n", e.getKey(),
                    e.getValue()[0] / 1e6 / tokens, 100 * e.getValue()[0] / total, (double) e.getValue()[1] / tokens,
                    e.getValue()[0] / 1e3 / e.getValue()[1]);
        }
    }
}
