package io.ouro.worker.infer;

import io.ouro.worker.TestData;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.reference.ReferenceModel;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Decoding with the KV cache computes what the training step's full forward computes, step by step. */
class KvCacheGenerateTest {

    @Test
    void logitsWithTheKvCacheEqualAFullRecomputation() {
        LoopConfig cfg = new LoopConfig(37, 24, 2, 3, 40, 3, 10_000, 1e-6, 0.1, 0.2, 4);
        float[] params = TestData.params(new ParamLayout(cfg), 12);
        int n = 14;
        int[] tokens = TestData.tokens(n, cfg.vocab(), 5), targets = new int[n];
        Arrays.fill(targets, 0);
        ReferenceModel full = new ReferenceModel(cfg);
        full.forward(params, tokens, targets, 1, n, Objective.stageOne(0.1), true);
        float[] lambdas = full.exitLambdas();

        Decoder dec = new Decoder(cfg, params, KvCache.Mode.FULL);
        double worst = 0, worstLambda = 0;
        for (int s = 0; s < n; s++) {
            Decoder.Token tok = dec.next(tokens[s], ExitPolicy.all(), true, true);
            for (int t = 0; t < cfg.steps(); t++) {
                float[] ref = full.logits(t);
                for (int j = 0; j < cfg.vocab(); j++) {
                    worst = Math.max(worst, Math.abs(ref[s * cfg.vocab() + j] - tok.stepLogits()[t][j]));
                }
                worstLambda = Math.max(worstLambda, Math.abs(lambdas[t * n + s] - tok.lambda()[t]));
            }
            assertEquals(cfg.steps() - 1, tok.exitStep());
        }
        System.out.printf("KvCacheGenerateTest: %d positions x %d steps, max |logit difference| %.2e, max |lambda"
                + " difference| %.2e%n", n, cfg.steps(), worst, worstLambda);
        assertTrue(worst <= 1e-5, "logits differ by " + worst);
        assertTrue(worstLambda <= 1e-6, "lambdas differ by " + worstLambda);
        assertEquals(2L * cfg.steps() * cfg.layers() * n * cfg.hidden() * 4, dec.cache().bytes());
    }
}
