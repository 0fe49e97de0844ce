package io.ouro.worker.hf;

import io.ouro.worker.TestData;
import io.ouro.worker.model.Bf16;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.reference.ReferenceModel;
import io.ouro.worker.torch.TorchLoopLM;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The HF export: names and shapes exactly HF Ouro's, an exact fp32 round trip, BF16 rounding to nearest even
 * within 2^-8 relative, and PyTorch (DJL's own safetensors reader) on the exported file giving the reference's
 * per-step logits; for BF16, PyTorch widening the file's 16-bit values itself gives exactly the weights the product
 * reads back, and the same per-step logits.
 */
class HfExportTest {

    // the config the HF state-dict list under src/test/resources/hf was written for
    static final LoopConfig LISTED = new LoopConfig(32, 16, 2, 2, 24, 3, 10_000, 1e-6, 0.1, 0.1, 5);

    @TempDir
    Path dir;

    @Test
    void exportedStateDictHasExactlyHfOurosNamesAndShapes() throws IOException {
        Map<String, String> hf = new TreeMap<>();
        try (InputStream in = HfExportTest.class.getResourceAsStream("/hf/ouro-state-dict.tsv")) {
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (!line.isBlank() && !line.startsWith("#")) {
                    String[] f = line.split("\t");
                    hf.put(f[0], f[1]);
                }
            }
        }
        ParamLayout layout = new ParamLayout(LISTED);
        HfModelDir.write(HfModelDir.local(dir), LISTED, TestData.params(layout, 3), Safetensors.Dtype.F32, 64, null, Map.of());
        Map<String, String> ours = new TreeMap<>();
        try (InputStream in = Files.newInputStream(dir.resolve(HfModelDir.WEIGHTS))) {
            for (Safetensors.Entry e : Safetensors.readHeader(in, "model.safetensors").entries()) {
                ours.put(e.name(), Arrays.stream(e.shape()).mapToObj(Long::toString)
                        .reduce((a, b) -> a + "," + b).orElse(""));
            }
        }
        assertEquals(hf, ours);
    }

    @Test
    void fp32RoundTripIsBitIdenticalAndBf16RoundsToNearestEven() throws IOException {
        LoopConfig cfg = LoopConfig.tiny();
        ParamLayout layout = new ParamLayout(cfg);
        float[] params = TestData.params(layout, 9);
        HfModelDir.write(HfModelDir.local(dir.resolve("fp32")), cfg, params, Safetensors.Dtype.F32, 128, null, Map.of());
        HfModelDir.Model back = HfModelDir.read(HfModelDir.local(dir.resolve("fp32")), cfg);
        assertEquals(cfg, back.config());
        assertArrayEquals(params, back.params());

        HfModelDir.write(HfModelDir.local(dir.resolve("bf16")), cfg, params, Safetensors.Dtype.BF16, 128, null, Map.of());
        float[] half = HfModelDir.read(HfModelDir.local(dir.resolve("bf16")), cfg).params();
        for (int i = 0; i < params.length; i++) {
            assertEquals(Bf16.round(params[i]), half[i], 0f);
            assertTrue(Math.abs(half[i] - params[i]) <= Math.abs(params[i]) * 0x1p-8, "element " + i);
        }
        // ties go to the even mantissa: 1 + 2^-8 lies half-way between 1 and 1 + 2^-7
        assertEquals(1f, Bf16.round(1f + 0x1p-8f), 0f);
        assertEquals(1f + 0x1p-6f, Bf16.round(1f + 0x1p-7f + 0x1p-8f), 0f);
    }

    @Test
    void pyTorchLoadsTheExportedWeightsAndGivesTheSamePerStepLogits() throws IOException {
        // F32: DJL 0.36's safetensors decoder aborts the JVM on BF16 tensors; the BF16 file's values are proven
        // above to be the round-to-nearest-even of these
        LoopConfig cfg = new LoopConfig(61, 32, 2, 4, 48, 3, 10_000, 1e-6, 0.1, 0.1, 21);
        ParamLayout layout = new ParamLayout(cfg);
        float[] params = TestData.params(layout, 8);
        int batch = 2, seqLen = 9, n = batch * seqLen;
        int[] tokens = TestData.tokens(n, cfg.vocab(), 31), targets = TestData.targets(n, cfg.vocab(), 32);
        HfModelDir.write(HfModelDir.local(dir), cfg, params, Safetensors.Dtype.F32, 64, null, Map.of());
        ReferenceModel ref = new ReferenceModel(cfg);
        ref.forward(params, tokens, targets, batch, seqLen, Objective.stageOne(0.1), true);
        try (TorchLoopLM torch = new TorchLoopLM(layout);
             InputStream in = Files.newInputStream(dir.resolve(HfModelDir.WEIGHTS))) {
            torch.loadSafetensors(in);
            TorchLoopLM.Result r = torch.forwardBackward(tokens, targets, batch, seqLen, Objective.stageOne(0.1),
                    false, true);
            double worst = 0;
            for (int t = 0; t < cfg.steps(); t++) {
                float[] a = ref.logits(t), b = r.logits()[t];
                for (int i = 0; i < a.length; i++) {
                    worst = Math.max(worst, Math.abs(a[i] - b[i]));
                }
            }
            System.out.printf("HfExportTest: PyTorch on the exported file, max |logit difference| over %d steps = %.2e%n",
                    cfg.steps(), worst);
            assertTrue(worst <= 1e-4, "max |logit difference| " + worst);
        }
    }

    @Test
    void pyTorchWidensTheBf16ExportToTheSameModel() throws IOException {
        // PyTorch reads the BF16 file's bytes as bfloat16 tensors and widens them itself; the reference runs on the
        // BF16 weights as the product reads them back: the same per-step logits
        LoopConfig cfg = new LoopConfig(61, 32, 2, 4, 48, 3, 10_000, 1e-6, 0.1, 0.1, 21);
        ParamLayout layout = new ParamLayout(cfg);
        float[] params = TestData.params(layout, 8);
        int batch = 2, seqLen = 9, n = batch * seqLen;
        int[] tokens = TestData.tokens(n, cfg.vocab(), 31), targets = TestData.targets(n, cfg.vocab(), 32);
        HfModelDir.write(HfModelDir.local(dir), cfg, params, Safetensors.Dtype.BF16, 64, null, Map.of());
        float[] bf16 = HfModelDir.read(HfModelDir.local(dir), cfg).params();
        ReferenceModel ref = new ReferenceModel(cfg);
        ref.forward(bf16, tokens, targets, batch, seqLen, Objective.stageOne(0.1), true);
        try (TorchLoopLM torch = new TorchLoopLM(layout);
             InputStream in = Files.newInputStream(dir.resolve(HfModelDir.WEIGHTS))) {
            torch.loadSafetensorsConverted(in);
            assertArrayEquals(bf16, torch.exportParams(), "PyTorch's bf16 -> fp32 of the file equals the product's");
            TorchLoopLM.Result r = torch.forwardBackward(tokens, targets, batch, seqLen, Objective.stageOne(0.1),
                    false, true);
            double worst = 0, moved = 0;
            for (int t = 0; t < cfg.steps(); t++) {
                float[] a = ref.logits(t), b = r.logits()[t];
                for (int i = 0; i < a.length; i++) {
                    worst = Math.max(worst, Math.abs(a[i] - b[i]));
                }
            }
            for (int i = 0; i < params.length; i++) {
                moved = Math.max(moved, Math.abs(params[i] - bf16[i]));
            }
            System.out.printf("HfExportTest: PyTorch on the BF16 export, max |logit difference| over %d steps = %.2e"
                    + " (the weights moved by up to %.2e in the rounding)%n", cfg.steps(), worst, moved);
            assertTrue(moved > 0, "BF16 rounding changed nothing: the test would not see a wrong decoding");
            assertTrue(worst <= 1e-4, "max |logit difference| " + worst);
        }
    }

    @Test
    void badDirectoriesAreErrorsNamingTheFileAndField() throws IOException {
        LoopConfig cfg = LoopConfig.tiny();
        ParamLayout layout = new ParamLayout(cfg);
        HfModelDir.write(HfModelDir.local(dir), cfg, TestData.params(layout, 1), Safetensors.Dtype.F32, 64, null, Map.of());
        Path config = dir.resolve(HfModelDir.CONFIG);
        String good = Files.readString(config);
        Files.writeString(config, good.replace("\"ouro\"", "\"llama\""));
        IOException e = assertThrows(IOException.class, () -> HfModelDir.read(HfModelDir.local(dir), cfg));
        assertTrue(e.getMessage().contains(config + ": model_type"), e.getMessage());

        Files.writeString(config, good.replace("\"num_key_value_heads\" : 2", "\"num_key_value_heads\" : 1"));
        e = assertThrows(IOException.class, () -> HfModelDir.read(HfModelDir.local(dir), cfg));
        assertTrue(e.getMessage().contains("num_key_value_heads"), e.getMessage());

        // a model with one layer more than the weights hold
        Files.writeString(config, good.replace("\"num_hidden_layers\" : 2", "\"num_hidden_layers\" : 3"));
        e = assertThrows(IOException.class, () -> HfModelDir.read(HfModelDir.local(dir), cfg));
        assertTrue(e.getMessage().contains("missing, first model.layers.2."), e.getMessage());
    }
}
