package io.ouro.orchestrator.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ouro.orchestrator.PretrainApp;
import io.ouro.orchestrator.config.ConfigException;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.train.Trainer;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.backend.EvalForward;
import io.ouro.worker.hf.HfModelDir;
import io.ouro.worker.hf.Safetensors;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What transformers needs from an {@code ouro export}: config.json's auto_map into the published Ouro modeling code,
 * generation_config.json and the tokenizer's config files, each key of the type transformers reads, with the EOS id
 * the tokenizer uses; and the export read back through {@code ouro eval --model}'s path gives the run checkpoint's
 * per-step CE bit for bit in fp32. Configs asking for what the project does not compute (a sliding window, grouped-query
 * attention) fail at load naming the key.
 */
class HfExportFilesTest {

    static final ObjectMapper JSON = new ObjectMapper();

    static final String TRAIN = """
            run: {name: export-files, seed: 4, out: "%s"}
            model: {preset: small, vocab: 53, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 3}
            data: {sources: [{name: arith, synthetic: {tokens: 4000, seed: 1}}]}
            train: {workers: 1, device: java, segment_steps: 2, checkpoint_every: 2, timeout_s: 60}
            stages:
              - {name: a, steps: 2, seq_len: 8, batch_per_worker: 2, lr: {peak: 0.01}}
            """;

    @TempDir
    Path tmp;

    @Test
    @Timeout(300)
    void exportLoadsInTransformersShapeAndEvaluatesAsTheCheckpoint() throws Exception {
        Configuration conf = new Configuration();
        Path cfgFile = tmp.resolve("run.yaml");
        Files.writeString(cfgFile, TRAIN.formatted(tmp.resolve("run").toUri()));
        TrainConfig cfg = TrainConfig.load(cfgFile);
        try (JavaSparkContext jsc = new JavaSparkContext(PretrainApp.sparkConf(cfg).setMaster("local[1]")
                .set("spark.ui.enabled", "false").set("spark.driver.host", "127.0.0.1")
                .set("spark.driver.bindAddress", "127.0.0.1"))) {
            new Trainer(jsc, cfg, System.out::println).run(false);
        }
        Path tokFile = LettersTokenizer.write(tmp);
        BpeTokenizer tok = BpeTokenizer.load(tokFile);
        Path out = tmp.resolve("hf");
        HfExportApp.export(cfgFile.toString(), null, out.toString(), Safetensors.Dtype.F32, tokFile.toString(), 512,
                "someone/Ouro-fork", HfExportApp.exitThreshold("q:0.7"), conf);

        // config.json: the keys AutoConfig and the remote OuroConfig read, of the types PretrainedConfig documents
        JsonNode c = JSON.readTree(out.resolve(HfModelDir.CONFIG).toFile());
        assertEquals("ouro", c.get("model_type").asText());
        assertEquals("OuroForCausalLM", c.get("architectures").get(0).asText());
        assertEquals("someone/Ouro-fork--configuration_ouro.OuroConfig", c.get("auto_map").get("AutoConfig").asText());
        assertEquals("someone/Ouro-fork--modeling_ouro.OuroForCausalLM",
                c.get("auto_map").get("AutoModelForCausalLM").asText());
        assertEquals(0.7, c.get("early_exit_threshold").asDouble(), 0);
        assertEquals(tok.eosId(), c.get("eos_token_id").asInt());
        assertEquals(tok.eosId(), c.get("bos_token_id").asInt());
        for (String k : new String[] {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "max_position_embeddings", "total_ut_steps",
                "max_window_layers", "eos_token_id", "bos_token_id"}) {
            assertTrue(c.get(k).isInt(), k + " is an int: " + c.get(k));
        }
        for (String k : new String[] {"rope_theta", "rms_norm_eps", "initializer_range", "attention_dropout",
                "early_exit_threshold"}) {
            assertTrue(c.get(k).isNumber(), k + " is a number: " + c.get(k));
        }
        for (String k : new String[] {"tie_word_embeddings", "use_cache", "use_sliding_window"}) {
            assertTrue(c.get(k).isBoolean(), k + " is a boolean: " + c.get(k));
        }
        assertEquals("float32", c.get("torch_dtype").asText());
        assertEquals(cfg.model().layers(), c.get("layer_types").size());

        // generation_config.json: GenerationConfig's token ids and greedy decoding
        JsonNode g = JSON.readTree(out.resolve(HfModelDir.GENERATION).toFile());
        assertEquals(tok.eosId(), g.get("eos_token_id").asInt());
        assertEquals(tok.eosId(), g.get("pad_token_id").asInt());
        assertFalse(g.get("do_sample").asBoolean());
        assertEquals(512, g.get("max_length").asInt());

        // tokenizer_config.json and special_tokens_map.json: the EOS token string is the one tokenizer.json maps to
        // the EOS id
        assertArrayEquals(Files.readAllBytes(tokFile), Files.readAllBytes(out.resolve(HfModelDir.TOKENIZER)));
        JsonNode tc = JSON.readTree(out.resolve(HfModelDir.TOKENIZER_CONFIG).toFile());
        JsonNode sm = JSON.readTree(out.resolve(HfModelDir.SPECIAL_TOKENS).toFile());
        assertEquals("PreTrainedTokenizerFast", tc.get("tokenizer_class").asText());
        assertEquals(512, tc.get("model_max_length").asInt());
        for (JsonNode n : new JsonNode[] {tc, sm}) {
            for (String k : new String[] {"bos_token", "eos_token", "pad_token"}) {
                assertEquals(tok.eosId(), tok.tokenId(n.get(k).asText()), k);
            }
        }

        // the round trip: ouro eval --model on the export and --config on the run give the same per-step CE
        ModelSource.Loaded run = ModelSource.load(null, cfgFile.toString(), null, conf);
        ModelSource.Loaded hf = ModelSource.load(out.toString(), null, null, conf);
        assertEquals(run.config().layers(), hf.config().layers());
        assertArrayEquals(run.params(), hf.params());
        int batch = 2, seqLen = 8;
        int[] tokens = new int[batch * seqLen], targets = new int[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = (i * 7 + 3) % 17;
            targets[i] = (i * 5 + 1) % 17;
        }
        try (EvalForward a = new EvalForward("java", run.config(), run.params(), batch, seqLen);
             EvalForward b = new EvalForward("java", hf.config(), hf.params(), batch, seqLen)) {
            EvalForward.Output x = a.forward(tokens, targets, batch), y = b.forward(tokens, targets, batch);
            assertArrayEquals(x.ce(), y.ce(), "per-step CE of the export vs the checkpoint");
            assertArrayEquals(x.lambda(), y.lambda());
        }
    }

    @Test
    void slidingWindowAndGroupedQueryConfigsFailAtLoadNamingTheKey() throws Exception {
        LoopConfig m = new LoopConfig(53, 16, 2, 2, 24, 3, 10_000, 1e-6, 0.1, 0.02, 1);
        Path dir = tmp.resolve("hf");
        HfModelDir.write(HfModelDir.local(dir), m, new float[new ParamLayout(m).arraySize()], Safetensors.Dtype.F32, 64,
                null, Map.of());
        Path config = dir.resolve(HfModelDir.CONFIG);
        String good = Files.readString(config);
        Configuration conf = new Configuration();

        // HF windows layers >= max_window_layers: with 1 of 2 layers windowed the config is refused
        Files.writeString(config, good.replace("\"use_sliding_window\" : false", "\"use_sliding_window\" : true")
                .replace("\"sliding_window\" : null", "\"sliding_window\" : 4")
                .replace("\"max_window_layers\" : 28", "\"max_window_layers\" : 1"));
        IOException e = assertThrows(IOException.class, () -> ModelSource.load(dir.toString(), null, null, conf));
        assertTrue(e.getMessage().contains(config + ": use_sliding_window"), e.getMessage());
        assertTrue(e.getMessage().contains("windows layers 1..1"), e.getMessage());
        // ... and so is starting training from it
        String yaml = """
                run: {name: b, seed: 3, out: "%s"}
                model: {init_from: "%s"}
                data: {sources: [{name: arith, synthetic: {tokens: 4000, seed: 1}}]}
                train: {workers: 1, device: java}
                stages:
                  - {name: b, steps: 1, seq_len: 8, batch_per_worker: 2, lr: {peak: 0.0}}
                """.formatted(tmp.resolve("b").toUri(), dir);
        ConfigException ce = assertThrows(ConfigException.class, () -> TrainConfig.parse("b.yaml", yaml));
        assertTrue(ce.getMessage().contains("use_sliding_window"), ce.getMessage());

        // with max_window_layers covering every layer, HF windows none: the same model, accepted
        Files.writeString(config, good.replace("\"use_sliding_window\" : false", "\"use_sliding_window\" : true")
                .replace("\"sliding_window\" : null", "\"sliding_window\" : 4"));
        assertEquals(m.layers(), ModelSource.load(dir.toString(), null, null, conf).config().layers());

        Files.writeString(config, good.replace("\"full_attention\" ]", "\"sliding_attention\" ]"));
        e = assertThrows(IOException.class, () -> ModelSource.load(dir.toString(), null, null, conf));
        assertTrue(e.getMessage().contains(config + ": layer_types[1]"), e.getMessage());

        Files.writeString(config, good.replace("\"num_key_value_heads\" : 2", "\"num_key_value_heads\" : 1"));
        e = assertThrows(IOException.class, () -> ModelSource.load(dir.toString(), null, null, conf));
        assertTrue(e.getMessage().contains(config + ": num_key_value_heads"), e.getMessage());
        assertTrue(e.getMessage().contains("grouped-query attention is not supported"), e.getMessage());
    }
}
