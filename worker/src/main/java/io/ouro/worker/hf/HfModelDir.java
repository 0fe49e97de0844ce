package io.ouro.worker.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.worker.model.FlatTensors;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model directory in HF's layout: {@code config.json}, {@code generation_config.json}, the weights as
 * {@code model.safetensors} (or, as published models ship them, shards named by {@code model.safetensors.index.json})
 * and optionally the tokenizer files. Written by {@code ouro export}, read by {@code model.init_from}, {@code ouro
 * generate} and {@code ouro eval}. The file system is the caller's ({@link Files}): local paths in tests, any
 * Hadoop file system in the orchestrator.
 */
public final class HfModelDir {

    public static final String CONFIG = "config.json", GENERATION = "generation_config.json",
            WEIGHTS = "model.safetensors", INDEX = "model.safetensors.index.json", TOKENIZER = "tokenizer.json",
            TOKENIZER_CONFIG = "tokenizer_config.json", SPECIAL_TOKENS = "special_tokens_map.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Opens and creates files of the directory by name. */
    public interface Files {
        InputStream open(String name) throws IOException;

        boolean exists(String name) throws IOException;

        OutputStream create(String name) throws IOException;

        /** A file's name as errors show it. */
        String describe(String name);
    }

    /** A model read from a directory. */
    public record Model(LoopConfig config, float[] params) {
    }

    /** What the tokenizer files need: the tokenizer.json bytes and its EOS token. */
    public record Tokenizer(byte[] json, String eosToken, int eosId) {
    }

    private HfModelDir() {
    }

    /**
     * Writes config.json (with an auto_map naming {@link HfConfig#DEFAULT_MODELING_REPO} and early_exit_threshold
     * 1.0), generation_config.json, model.safetensors and, when {@code tok} is given, the tokenizer files.
     */
    public static void write(Files dir, LoopConfig cfg, float[] params, Safetensors.Dtype dtype, int maxPositions,
                             Tokenizer tok, Map<String, String> meta) throws IOException {
        write(dir, cfg, params, dtype, maxPositions, HfConfig.DEFAULT_MODELING_REPO, 1.0, tok, meta);
    }

    /**
     * Writes config.json ({@link HfConfig#toJson}: auto_map into {@code modelingRepo}, {@code exitThreshold} as
     * early_exit_threshold), generation_config.json (greedy, BOS/EOS/pad the tokenizer's EOS), model.safetensors and,
     * when {@code tok} is given, tokenizer.json, tokenizer_config.json and special_tokens_map.json, which
     * {@code AutoTokenizer} reads beside it.
     */
    public static void write(Files dir, LoopConfig cfg, float[] params, Safetensors.Dtype dtype, int maxPositions,
                             String modelingRepo, double exitThreshold, Tokenizer tok, Map<String, String> meta)
            throws IOException {
        int eos = tok == null ? -1 : tok.eosId();
        writeJson(dir, CONFIG, HfConfig.toJson(cfg, dtype, maxPositions, eos, modelingRepo, exitThreshold));
        ObjectNode gen = JSON.createObjectNode();
        gen.put("_from_model_config", true);
        if (eos >= 0) {
            gen.put("bos_token_id", eos);
            gen.put("eos_token_id", eos);
            gen.put("pad_token_id", eos);
        }
        gen.put("do_sample", false);
        gen.put("max_length", maxPositions);
        writeJson(dir, GENERATION, gen);
        try (OutputStream out = new java.io.BufferedOutputStream(dir.create(WEIGHTS), 1 << 20)) {
            Safetensors.write(out, new ParamLayout(cfg).tensors(), FlatTensors.source(params), meta, dtype);
        }
        if (tok != null) {
            try (OutputStream out = dir.create(TOKENIZER)) {
                out.write(tok.json());
            }
            ObjectNode special = JSON.createObjectNode();
            special.put("bos_token", tok.eosToken());
            special.put("eos_token", tok.eosToken());
            special.put("pad_token", tok.eosToken());
            special.put("unk_token", tok.eosToken());
            ObjectNode tc = special.deepCopy();
            tc.put("tokenizer_class", "PreTrainedTokenizerFast");
            tc.put("model_max_length", maxPositions);
            // byte-level BPE decodes its spaces exactly; the clean-up would drop the one before punctuation
            tc.put("clean_up_tokenization_spaces", false);
            writeJson(dir, TOKENIZER_CONFIG, tc);
            writeJson(dir, SPECIAL_TOKENS, special);
        }
    }

    /** Reads config.json and every weight (from model.safetensors, or the shards the index names). */
    public static Model read(Files dir, LoopConfig defaults) throws IOException {
        byte[] cj;
        try (InputStream in = dir.open(CONFIG)) {
            cj = in.readAllBytes();
        }
        LoopConfig cfg = HfConfig.parse(dir.describe(CONFIG), cj, defaults);
        ParamLayout layout = new ParamLayout(cfg);
        float[] flat = new float[layout.arraySize()];
        Set<String> files = new LinkedHashSet<>();
        if (dir.exists(INDEX)) {
            JsonNode map;
            try (InputStream in = dir.open(INDEX)) {
                map = JSON.readTree(in).path("weight_map");
            }
            if (!map.isObject()) {
                throw new IOException(dir.describe(INDEX) + ": weight_map: expected an object of tensor name -> file");
            }
            for (Iterator<JsonNode> it = map.elements(); it.hasNext(); ) {
                files.add(it.next().asText());
            }
        } else {
            files.add(WEIGHTS);
        }
        Map<String, TensorView> byName = new java.util.HashMap<>();
        for (TensorView t : layout.tensors()) {
            byName.put(t.name(), t);
        }
        Set<String> found = new HashSet<>();
        for (String f : files) {
            try (InputStream in = new java.io.BufferedInputStream(dir.open(f), 1 << 20)) {
                for (String name : Safetensors.readPresent(in, dir.describe(f), byName, FlatTensors.sink(flat),
                        "an Ouro model of " + layout.config())) {
                    if (!found.add(name)) {
                        throw new IOException(dir.describe(f) + ": tensor " + name + " is also in another weights file");
                    }
                }
            }
        }
        List<String> missing = layout.tensors().stream().map(TensorView::name).filter(n -> !found.contains(n)).toList();
        if (!missing.isEmpty()) {
            throw new IOException(dir.describe(files.iterator().next()) + ": " + missing.size()
                    + " tensor(s) of the model are missing, first " + missing.get(0));
        }
        return new Model(cfg, flat);
    }

    private static void writeJson(Files dir, String name, ObjectNode n) throws IOException {
        try (OutputStream out = dir.create(name)) {
            out.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(n));
        }
    }

    /** The local file system under {@code root}. */
    public static Files local(java.nio.file.Path root) {
        return new Files() {
            @Override
            public InputStream open(String name) throws IOException {
                return java.nio.file.Files.newInputStream(root.resolve(name));
            }

            @Override
            public boolean exists(String name) {
                return java.nio.file.Files.exists(root.resolve(name));
            }

            @Override
            public OutputStream create(String name) throws IOException {
                java.nio.file.Files.createDirectories(root);
                return java.nio.file.Files.newOutputStream(root.resolve(name));
            }

            @Override
            public String describe(String name) {
                return root.resolve(name).toString();
            }
        };
    }
}
