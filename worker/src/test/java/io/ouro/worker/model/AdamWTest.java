package io.ouro.worker.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AdamWTest {

    final ParamLayout layout = new ParamLayout(LoopConfig.tiny());

    @Test
    void updateFollowsTheAdamWFormulaWithBiasCorrection() {
        float[] p = ParamInit.initialize(layout);
        float[] start = p.clone();
        AdamW opt = new AdamW(layout, 0.9, 0.95, 1e-8, 0.1, DecayPolicy.defaults());
        double lr = 1e-2;
        double[] m = new double[p.length], v = new double[p.length], ref = new double[p.length];
        for (int i = 0; i < p.length; i++) {
            ref[i] = start[i];
        }
        for (int step = 1; step <= 3; step++) {
            float[] g = new float[p.length];
            for (int i = 0; i < g.length; i++) {
                g[i] = (float) Math.sin(i * 0.37 + step);
            }
            opt.step(p, g, lr, t -> true);
            for (TensorView t : layout.tensors()) {
                boolean decays = DecayPolicy.defaults().decays(t);
                for (int i = t.off(); i < t.off() + t.len(); i++) {
                    if (decays) {
                        ref[i] *= 1 - lr * 0.1;
                    }
                    m[i] = 0.9 * m[i] + 0.1 * g[i];
                    v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
                    double denom = Math.sqrt(v[i]) / Math.sqrt(1 - Math.pow(0.95, step)) + 1e-8;
                    ref[i] -= lr / (1 - Math.pow(0.9, step)) * m[i] / denom;
                }
            }
        }
        for (int i = 0; i < p.length; i++) {
            assertEquals(ref[i], p[i], 1e-6, "element " + i);
        }
        assertEquals(3, opt.stepCount());
    }

    @Test
    void defaultPolicyDecaysProjectionsAndEmbeddingsButNotNormsOrBiases() {
        float[] p = ParamInit.initialize(layout);
        p[layout.gateBias().off()] = 0.5f;
        float[] start = p.clone();
        AdamW opt = AdamW.ouro(layout);
        opt.step(p, new float[p.length], 0.1, t -> true);
        TensorView norm = layout.get("model.layers.0.input_layernorm.weight");
        TensorView q = layout.get("model.layers.0.self_attn.q_proj.weight");
        TensorView emb = layout.embed();
        assertEquals(start[norm.off()], p[norm.off()]);
        assertEquals(start[layout.gateBias().off()], p[layout.gateBias().off()]);
        assertEquals(start[q.off()] * (1 - 0.1 * 0.1), p[q.off()], 1e-7);
        assertEquals(start[emb.off()] * (1 - 0.1 * 0.1), p[emb.off()], 1e-7);
    }

    @Test
    void frozenTensorsAreLeftUntouched() {
        float[] p = ParamInit.initialize(layout);
        float[] start = p.clone();
        float[] g = new float[p.length];
        java.util.Arrays.fill(g, 1f);
        AdamW opt = AdamW.ouro(layout);
        opt.step(p, g, 1e-3, layout::isGate);
        for (TensorView t : layout.tensors()) {
            for (int i = t.off(); i < t.off() + t.len(); i++) {
                if (layout.isGate(t)) {
                    assertTrue(p[i] != start[i], t.name() + " should train");
                } else {
                    assertEquals(start[i], p[i], t.name() + " is frozen");
                    assertEquals(0f, opt.firstMoment()[i]);
                }
            }
        }
    }

    @Test
    void clippingScalesToTheMaximumNormAndReportsTheNormBefore() {
        float[] g = {3, 4, 0};
        double norm = GradClip.clip(g, 1.0);
        assertEquals(5.0, norm, 1e-12);
        assertEquals(1.0, GradClip.norm(g), 1e-6);
        float[] small = {0.3f, 0.4f};
        GradClip.clip(small, 1.0);
        assertEquals(0.3f, small[0]);
    }

    @Test
    void invalidSettingsNameTheField() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new AdamW(layout, 1.2, 0.95, 1e-8, 0.1, DecayPolicy.defaults()));
        assertTrue(e.getMessage().contains("AdamW.beta1"), e.getMessage());
        AdamW opt = AdamW.ouro(layout);
        float[] p = ParamInit.initialize(layout);
        e = assertThrows(IllegalArgumentException.class, () -> opt.step(p, new float[p.length], Double.NaN, t -> true));
        assertTrue(e.getMessage().contains("learning rate"), e.getMessage());
    }
}
