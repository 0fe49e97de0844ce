package io.ouro.worker.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.worker.model.LoopConfig;

import java.io.IOException;

/**
 * HF Ouro's {@code config.json} for a {@link LoopConfig}, both ways. Written with the fields HF Ouro's
 * configuration class reads (model_type "ouro", architectures OuroForCausalLM, total_ut_steps, early_exit_threshold,
 * rope_theta, the sizes, untied embeddings, MHA: num_key_value_heads = num_attention_heads). Read back with the
 * checks this project's model needs; an error names the file and the field. Fields HF does not know (beta,
 * init_std, seed) are not written: they come from the pipeline config when training continues.
 */
public final class HfConfig {

    private static final ObjectMapper JSON = new ObjectMapper();

    private HfConfig() {
    }

    /**
     * The config.json object of {@code c}.
     *
     * @param maxPositions max_position_embeddings (RoPE has no table limit here; HF sizes its cache by it)
     * @param eosId        the tokenizer's EOS id, or -1 when unknown (then bos/eos are left out)
     */
    public static ObjectNode toJson(LoopConfig c, Safetensors.Dtype dtype, int maxPositions, int eosId) {
        ObjectNode n = JSON.createObjectNode();
        n.putArray("architectures").add("OuroForCausalLM");
        n.put("model_type", "ouro");
        n.put("vocab_size", c.vocab());
        n.put("hidden_size", c.hidden());
        n.put("intermediate_size", c.ffn());
        n.put("num_hidden_layers", c.layers());
        n.put("num_attention_heads", c.heads());
        n.put("num_key_value_heads", c.heads());
        n.put("head_dim", c.headDim());
        n.put("hidden_act", "silu");
        n.put("max_position_embeddings", maxPositions);
        n.put("rms_norm_eps", c.normEps());
        n.put("rope_theta", c.ropeBase());
        n.putNull("rope_scaling");
        n.put("total_ut_steps", c.steps());
        // 1.0: no threshold exit unless the user asks for one (HF Ouro's default)
        n.put("early_exit_threshold", 1.0);
        n.put("tie_word_embeddings", false);
        n.put("attention_dropout", 0.0);
        n.put("initializer_range", c.initStd());
        n.put("use_cache", true);
        n.put("use_sliding_window", false);
        n.putNull("sliding_window");
        n.put("torch_dtype", dtype.torchName());
        if (eosId >= 0) {
            n.put("bos_token_id", eosId);
            n.put("eos_token_id", eosId);
        }
        return n;
    }

    /**
     * The model a config.json describes; {@code defaults} supplies what HF does not record (beta, init_std, seed).
     */
    public static LoopConfig parse(String file, byte[] json, LoopConfig defaults) throws IOException {
        JsonNode n;
        try {
            n = JSON.readTree(json);
        } catch (IOException e) {
            throw new IOException(file + ": not valid JSON: " + e.getMessage(), e);
        }
        if (n == null || !n.isObject()) {
            throw new IOException(file + ": expected a JSON object");
        }
        String type = n.path("model_type").asText("");
        if (!type.equals("ouro")) {
            throw new IOException(file + ": model_type: expected \"ouro\", got \"" + type + "\"");
        }
        int hidden = positive(n, file, "hidden_size");
        int heads = positive(n, file, "num_attention_heads");
        if (n.has("num_key_value_heads") && !n.get("num_key_value_heads").isNull()
                && n.get("num_key_value_heads").asInt() != heads) {
            throw new IOException(file + ": num_key_value_heads: expected " + heads
                    + " (multi-head attention; grouped-query attention is not supported), got " + n.get("num_key_value_heads"));
        }
        if (n.has("head_dim") && !n.get("head_dim").isNull() && n.get("head_dim").asInt() * heads != hidden) {
            throw new IOException(file + ": head_dim: expected hidden_size / num_attention_heads = " + hidden / heads
                    + ", got " + n.get("head_dim"));
        }
        if (n.path("tie_word_embeddings").asBoolean(false)) {
            throw new IOException(file + ": tie_word_embeddings: expected false (Ouro has its own lm_head)");
        }
        if (n.has("hidden_act") && !n.get("hidden_act").asText().equals("silu")) {
            throw new IOException(file + ": hidden_act: expected \"silu\", got " + n.get("hidden_act"));
        }
        if (n.has("rope_scaling") && !n.get("rope_scaling").isNull()) {
            throw new IOException(file + ": rope_scaling: expected null (RoPE scaling is not supported), got "
                    + n.get("rope_scaling"));
        }
        // newer transformers nest it under rope_parameters
        JsonNode rope = n.has("rope_theta") ? n.get("rope_theta") : n.path("rope_parameters").path("rope_theta");
        double ropeBase = rope.isNumber() ? rope.asDouble() : 10_000;
        double eps = n.path("rms_norm_eps").isNumber() ? n.get("rms_norm_eps").asDouble() : 1e-6;
        int steps = n.has("total_ut_steps") ? positive(n, file, "total_ut_steps") : 4;
        try {
            return new LoopConfig(positive(n, file, "vocab_size"), hidden, positive(n, file, "num_hidden_layers"), heads,
                    positive(n, file, "intermediate_size"), steps, ropeBase, eps, defaults.beta(), defaults.initStd(),
                    defaults.seed());
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    private static int positive(JsonNode n, String file, String field) throws IOException {
        JsonNode v = n.get(field);
        if (v == null || !v.canConvertToInt() || v.asInt() <= 0) {
            throw new IOException(file + ": " + field + ": expected a positive integer, got "
                    + (v == null ? "nothing" : v.toString()));
        }
        return v.asInt();
    }
}
