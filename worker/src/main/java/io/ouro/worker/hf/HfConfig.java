package io.ouro.worker.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.worker.model.LoopConfig;

import java.io.IOException;

/**
 * HF Ouro's {@code config.json} for a {@link LoopConfig}, both ways. Written with every key HF Ouro's
 * {@code OuroConfig} saves (model_type "ouro", architectures OuroForCausalLM, total_ut_steps, early_exit_threshold,
 * rope_theta, the sizes, untied embeddings, MHA: num_key_value_heads = num_attention_heads, no sliding window) and an
 * {@code auto_map} that points transformers at the published Ouro modeling code by repository reference (the project
 * ships no modeling code). Read back with the checks this project's model needs; an error names the file and the key.
 * Fields HF does not know (beta, seed) are not written: they come from the pipeline config when training continues.
 */
public final class HfConfig {

    /** The published Ouro repository whose configuration_ouro.py and modeling_ouro.py an export's auto_map names. */
    public static final String DEFAULT_MODELING_REPO = "ByteDance/Ouro-1.4B";

    // HF's OuroConfig default; it only matters with use_sliding_window, which this project never writes
    static final int HF_MAX_WINDOW_LAYERS = 28;

    private static final ObjectMapper JSON = new ObjectMapper();

    private HfConfig() {
    }

    /**
     * The config.json object of {@code c}, keys in the order save_pretrained writes them (sorted).
     *
     * @param maxPositions  max_position_embeddings (RoPE has no table limit here; HF sizes its cache by it)
     * @param eosId         the tokenizer's EOS id, or -1 when unknown (then bos/eos are left out)
     * @param modelingRepo  the HF repository holding configuration_ouro.py and modeling_ouro.py, or null for no
     *                      auto_map
     * @param exitThreshold early_exit_threshold: HF's forward picks, per token, the first step whose cumulative exit
     *                      probability reaches it; 1.0 is always the last step
     */
    public static ObjectNode toJson(LoopConfig c, Safetensors.Dtype dtype, int maxPositions, int eosId,
                                    String modelingRepo, double exitThreshold) {
        if (!(exitThreshold > 0 && exitThreshold <= 1)) {
            throw new IllegalArgumentException("early_exit_threshold: expected a value in (0, 1], got " + exitThreshold);
        }
        ObjectNode n = JSON.createObjectNode();
        n.putArray("architectures").add("OuroForCausalLM");
        n.put("attention_dropout", 0.0);
        if (modelingRepo != null) {
            ObjectNode map = n.putObject("auto_map");
            map.put("AutoConfig", modelingRepo + "--configuration_ouro.OuroConfig");
            map.put("AutoModel", modelingRepo + "--modeling_ouro.OuroModel");
            map.put("AutoModelForCausalLM", modelingRepo + "--modeling_ouro.OuroForCausalLM");
        }
        if (eosId >= 0) {
            n.put("bos_token_id", eosId);
        }
        n.put("early_exit_threshold", exitThreshold);
        if (eosId >= 0) {
            n.put("eos_token_id", eosId);
        }
        n.put("hidden_act", "silu");
        n.put("hidden_size", c.hidden());
        n.put("initializer_range", c.initStd());
        n.put("intermediate_size", c.ffn());
        var types = n.putArray("layer_types");
        for (int l = 0; l < c.layers(); l++) {
            types.add("full_attention");
        }
        n.put("max_position_embeddings", maxPositions);
        n.put("max_window_layers", HF_MAX_WINDOW_LAYERS);
        n.put("model_type", "ouro");
        n.put("num_attention_heads", c.heads());
        n.put("num_hidden_layers", c.layers());
        n.put("num_key_value_heads", c.heads());
        n.put("rms_norm_eps", c.normEps());
        n.putNull("rope_scaling");
        n.put("rope_theta", c.ropeBase());
        n.putNull("sliding_window");
        n.put("tie_word_embeddings", false);
        n.put("torch_dtype", dtype.torchName());
        n.put("total_ut_steps", c.steps());
        n.put("use_cache", true);
        n.put("use_sliding_window", false);
        n.put("vocab_size", c.vocab());
        return n;
    }

    /**
     * The model a config.json describes; {@code defaults} supplies what HF does not record (beta, seed, and init_std
     * when initializer_range is absent). Refused, naming the key: grouped-query attention, a sliding window on any
     * layer, tied embeddings, another activation, RoPE scaling.
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
        checkNoSlidingWindow(n, file, positive(n, file, "num_hidden_layers"));
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
        double initStd = n.path("initializer_range").isNumber() && n.get("initializer_range").asDouble() > 0
                ? n.get("initializer_range").asDouble() : defaults.initStd();
        try {
            return new LoopConfig(positive(n, file, "vocab_size"), hidden, positive(n, file, "num_hidden_layers"), heads,
                    positive(n, file, "intermediate_size"), steps, ropeBase, eps, defaults.beta(), initStd,
                    defaults.seed());
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * HF Ouro (as Qwen2) windows the attention of layer i when use_sliding_window is true, sliding_window is set and
     * i >= max_window_layers, or when layer_types names "sliding_attention" for it; this project computes full causal
     * attention only, so such a config is refused rather than run with the wrong mask.
     */
    private static void checkNoSlidingWindow(JsonNode n, String file, int layers) throws IOException {
        JsonNode types = n.get("layer_types");
        if (types != null && !types.isNull()) {
            if (!types.isArray()) {
                throw new IOException(file + ": layer_types: expected a list, got " + types);
            }
            for (int i = 0; i < types.size(); i++) {
                if (!types.get(i).asText().equals("full_attention")) {
                    throw new IOException(file + ": layer_types[" + i + "]: expected \"full_attention\" (sliding-window"
                            + " attention is not supported), got " + types.get(i));
                }
            }
        }
        if (!n.path("use_sliding_window").asBoolean(false)) {
            return;
        }
        JsonNode window = n.get("sliding_window");
        int firstWindowed = n.path("max_window_layers").canConvertToInt()
                ? n.get("max_window_layers").asInt() : HF_MAX_WINDOW_LAYERS;
        if (window != null && !window.isNull() && firstWindowed < layers) {
            throw new IOException(file + ": use_sliding_window: true with sliding_window " + window
                    + " windows layers " + Math.max(0, firstWindowed) + ".." + (layers - 1) + " (max_window_layers "
                    + firstWindowed + "); sliding-window attention is not supported, set use_sliding_window to false");
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
