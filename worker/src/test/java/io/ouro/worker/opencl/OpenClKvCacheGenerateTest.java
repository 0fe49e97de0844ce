package io.ouro.worker.opencl;

import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.TestData;
import io.ouro.worker.TestDevice;
import io.ouro.worker.infer.Decoder;
import io.ouro.worker.infer.ExitPolicy;
import io.ouro.worker.infer.Generator;
import io.ouro.worker.infer.JavaDecodeOps;
import io.ouro.worker.infer.KvCache;
import io.ouro.worker.infer.TokenSampler;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.reference.ReferenceModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Decoding on the OpenCL backend ({@link OpenClDecodeOps} under the one {@link Decoder}): with the KV cache its logits
 * equal a full recomputation without it (the training step's forward over the whole prefix), and every exit mode and
 * cache mode decodes as the Java backend does, on each of the backend's paths: the loop step fused into one launch
 * (the default on CPU devices), one launch per op with the hand-written GEMV, and one launch per op with the translated
 * GEMV (the default elsewhere). Shapes are not multiples of the work-group size.
 */
class OpenClKvCacheGenerateTest {

    /** FFN 42: products whose rows are not a multiple of the 8-wide loads (and a vocabulary not of the 4-row items). */
    static final LoopConfig CFG = new LoopConfig(37, 24, 2, 3, 42, 3, 10_000, 1e-6, 0.1, 0.2, 4);
    /** Cached against a full recomputation, one token at a time (the bound). */
    static final double BOUND = 1e-5;
    /**
     * OpenCL against Java along a whole generation (21 tokens, shared caches averaged on the device): float32 logits of
     * O(1) whose kernels sum in other orders than the Java reference; measured up to 7.4e-6 on pocl.
     */
    static final double BACKENDS = 2e-5;

    /** The OpenCL decoder's ways of running a token. */
    enum Path { FUSED, OPS, TRANSLATED }

    static OpenClDecodeOps open(float[] params, int stepCap, int sharedCap) {
        return open(params, stepCap, sharedCap, Path.FUSED);
    }

    static OpenClDecodeOps open(float[] params, int stepCap, int sharedCap, Path path) {
        OpenClDecodeOps cl = new OpenClDecodeOps(CFG, OpenClDevices.select(DeviceSpec.parse(TestDevice.spec())), params,
                stepCap, sharedCap);
        cl.fuseSteps(path == Path.FUSED);
        cl.useHandGemv(path != Path.TRANSLATED);
        return cl;
    }

    @ParameterizedTest
    @EnumSource(Path.class)
    void logitsWithTheKvCacheEqualAFullRecomputationOnBothBackends(Path path) {
        float[] params = TestData.params(new ParamLayout(CFG), 12);
        int n = 14;
        int[] tokens = TestData.tokens(n, CFG.vocab(), 5), targets = new int[n];
        ReferenceModel full = new ReferenceModel(CFG);
        full.forward(params, tokens, targets, 1, n, Objective.stageOne(0.1), true);
        float[] lambdas = full.exitLambdas();
        try (OpenClDecodeOps cl = open(params, n, 0, path)) {
            Decoder[] decoders = {new Decoder(new JavaDecodeOps(CFG, params), KvCache.Mode.FULL),
                    new Decoder(cl, KvCache.Mode.FULL)};
            String[] names = {"java", "opencl"};
            for (int b = 0; b < 2; b++) {
                double worst = 0, worstLambda = 0;
                for (int s = 0; s < n; s++) {
                    Decoder.Token tok = decoders[b].next(tokens[s], ExitPolicy.all(), true, true);
                    for (int t = 0; t < CFG.steps(); t++) {
                        float[] ref = full.logits(t);
                        for (int j = 0; j < CFG.vocab(); j++) {
                            worst = Math.max(worst, Math.abs(ref[s * CFG.vocab() + j] - tok.stepLogits()[t][j]));
                        }
                        worstLambda = Math.max(worstLambda, Math.abs(lambdas[t * n + s] - tok.lambda()[t]));
                    }
                    assertEquals(CFG.steps() - 1, tok.exitStep());
                }
                System.out.printf(Locale.ROOT, "OpenClKvCacheGenerateTest %s (%s): %d positions x %d steps, cached vs "
                        + "full recomputation: max |logit difference| %.2e, max |lambda difference| %.2e%n", names[b], path, n,
                        CFG.steps(), worst, worstLambda);
                assertTrue(worst <= BOUND, names[b] + ": logits differ by " + worst);
                assertTrue(worstLambda <= 1e-6, names[b] + ": lambdas differ by " + worstLambda);
                assertEquals(2L * CFG.steps() * CFG.layers() * n * CFG.hidden() * 4, decoders[b].cache().bytes());
            }
            // the cache is full: one more token is an error naming the capacity
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> decoders[1].next(1, ExitPolicy.all(), true, false));
            assertTrue(e.getMessage().contains("14"), e.getMessage());
        }
    }

    @ParameterizedTest
    @EnumSource(Path.class)
    void everyExitAndCacheModeDecodesAsTheJavaBackend(Path path) {
        float[] params = TestData.params(new ParamLayout(CFG), 3);
        int[] prompt = TestData.tokens(9, CFG.vocab(), 7);
        int maxNew = 12;
        ExitPolicy[] policies = {ExitPolicy.all(), ExitPolicy.atStep(2), ExitPolicy.qExit(0.4), ExitPolicy.qExit(0)};
        try (OpenClDecodeOps clFull = open(params, prompt.length + maxNew, 0, path);
             OpenClDecodeOps clShared = open(params, prompt.length, prompt.length + maxNew, path)) {
            for (KvCache.Mode mode : KvCache.Mode.values()) {
                Generator cl = new Generator(mode == KvCache.Mode.FULL ? clFull : clShared);
                Generator java = new Generator(CFG, params);
                for (ExitPolicy p : policies) {
                    Generator.Result rj = java.generate(prompt, maxNew, -1, p, mode, TokenSampler.greedy());
                    Generator.Result rc = cl.generate(prompt, maxNew, -1, p, mode, TokenSampler.greedy());
                    assertArrayEquals(rj.tokens(), rc.tokens(), mode + " " + p);
                    assertArrayEquals(rj.exitCounts(), rc.exitCounts(), mode + " " + p);
                    assertEquals(rj.cacheBytes(), rc.cacheBytes(), mode + " " + p);
                    double worst = worstLogitDifference(params, prompt, rj.tokens(), p, mode,
                            mode == KvCache.Mode.FULL ? clFull : clShared);
                    System.out.printf(Locale.ROOT, "OpenClKvCacheGenerateTest (%s) %s %s: %s, exit steps %s, cache %d "
                            + "bytes, max |logit difference| OpenCL vs Java %.2e%n", path, mode, p, Arrays.toString(rc.tokens()),
                            Arrays.toString(rc.exitCounts()), rc.cacheBytes(), worst);
                    assertTrue(worst <= BACKENDS, mode + " " + p + ": logits differ by " + worst);
                }
            }
        }
    }

    // both decoders fed the prompt and then the Java backend's tokens: the largest logit difference at the exit steps
    static double worstLogitDifference(float[] params, int[] prompt, int[] generated, ExitPolicy p, KvCache.Mode mode,
                                       OpenClDecodeOps cl) {
        Decoder a = new Decoder(new JavaDecodeOps(CFG, params), mode), b = new Decoder(cl, mode);
        double worst = 0;
        Decoder.Token ta = null, tb = null;
        for (int tok : prompt) {
            ta = a.next(tok, p, true, false);
            tb = b.next(tok, p, true, false);
            worst = Math.max(worst, diff(ta, tb));
        }
        a.cache().share();
        b.cache().share();
        for (int i = 0; i + 1 < generated.length; i++) {
            ta = a.next(generated[i], p, false, false);
            tb = b.next(generated[i], p, false, false);
            assertEquals(ta.exitStep(), tb.exitStep());
            worst = Math.max(worst, diff(ta, tb));
        }
        return worst;
    }

    static double diff(Decoder.Token a, Decoder.Token b) {
        double w = 0;
        for (int j = 0; j < a.logits().length; j++) {
            w = Math.max(w, Math.abs(a.logits()[j] - b.logits()[j]));
        }
        return w;
    }
}
