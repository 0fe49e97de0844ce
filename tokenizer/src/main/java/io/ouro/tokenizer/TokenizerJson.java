package io.ouro.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The HuggingFace {@code tokenizer.json} loader: model BPE, the normalizers NFC, NFD, NFKC, NFKD, Lowercase and
 * Sequence, the pre-tokenizers ({@link PreTokenizers}), added and special tokens, the ByteLevel decoder.
 */
final class TokenizerJson {

    private TokenizerJson() {
    }

    /** Reads a HuggingFace tokenizer.json; unsupported parts are errors naming the JSON path. */
    static BpeTokenizer read(byte[] json, String file) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(json);
        } catch (IOException e) {
            throw new TokenizerException(file + ": not valid JSON: " + e.getMessage(), e);
        }
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText("BPE")) || !model.has("vocab")) {
            throw new TokenizerException(file + ": model.type=" + model.path("type").asText("(missing)")
                    + " is not supported (expected BPE with vocab and merges)");
        }
        if (model.path("byte_fallback").asBoolean(false)) {
            throw new TokenizerException(file + ": model.byte_fallback=true is not supported");
        }
        if (!model.path("dropout").isNull() && !model.path("dropout").isMissingNode()) {
            throw new TokenizerException(file + ": model.dropout is not supported (training-time only)");
        }
        for (String k : new String[] {"continuing_subword_prefix", "end_of_word_suffix"}) {
            if (!model.path(k).asText("").isEmpty()) {
                throw new TokenizerException(file + ": model." + k + "=" + model.path(k) + " is not supported");
            }
        }
        Map<String, Integer> vocab = new HashMap<>(model.path("vocab").size() * 2);
        model.path("vocab").fields().forEachRemaining(e -> vocab.put(e.getKey(), e.getValue().asInt()));
        JsonNode merges = model.path("merges");
        PairTable pairs = new PairTable(merges.size());
        for (int r = 0; r < merges.size(); r++) {
            JsonNode m = merges.get(r);
            String a, b;
            if (m.isArray()) {
                a = m.get(0).asText();
                b = m.get(1).asText();
            } else {
                String s = m.asText();
                int sp = s.indexOf(' ', 1);
                if (sp < 0) {
                    throw new TokenizerException(file + ": model.merges[" + r + "]='" + s + "' is not a pair");
                }
                a = s.substring(0, sp);
                b = s.substring(sp + 1);
            }
            Integer ia = vocab.get(a), ib = vocab.get(b), im = vocab.get(a + b);
            if (ia == null || ib == null || im == null) {
                throw new TokenizerException(file + ": model.merges[" + r + "]: '" + a + "' + '" + b
                        + "' refers to a token that is not in model.vocab");
            }
            pairs.put(ia, ib, r, im);
        }
        List<BpeTokenizer.AddedToken> addedTokens = new ArrayList<>();
        JsonNode at = root.path("added_tokens");
        for (int i = 0; i < at.size(); i++) {
            JsonNode a = at.get(i);
            if (a.path("single_word").asBoolean(false)) {
                throw new TokenizerException(file + ": added_tokens[" + i + "].single_word=true is not supported");
            }
            addedTokens.add(new BpeTokenizer.AddedToken(a.path("id").asInt(), a.path("content").asText(),
                    a.path("lstrip").asBoolean(false), a.path("rstrip").asBoolean(false)));
        }
        UnaryOperator<String> norm = normalizer(root.path("normalizer"), file, "normalizer");
        List<PreTokenizer> pre = new ArrayList<>();
        PreTokenizers.fromJson(root.path("pre_tokenizer"), file, "pre_tokenizer", pre);
        JsonNode dec = root.path("decoder");
        if (!dec.isMissingNode() && !dec.isNull() && !"ByteLevel".equals(dec.path("type").asText())) {
            throw new TokenizerException(file + ": decoder.type=" + dec.path("type").asText() + " is not supported");
        }
        return new BpeTokenizer(file, vocab, pairs, model.path("ignore_merges").asBoolean(false), norm, pre,
                addedTokens, "<|endoftext|>", BpeTokenizer.sha256(json));
    }

    static UnaryOperator<String> normalizer(JsonNode n, String file, String path) {
        if (n == null || n.isNull() || n.isMissingNode()) {
            return s -> s;
        }
        String type = n.path("type").asText();
        switch (type) {
            case "NFC":
                return s -> Normalizer.normalize(s, Normalizer.Form.NFC);
            case "NFD":
                return s -> Normalizer.normalize(s, Normalizer.Form.NFD);
            case "NFKC":
                return s -> Normalizer.normalize(s, Normalizer.Form.NFKC);
            case "NFKD":
                return s -> Normalizer.normalize(s, Normalizer.Form.NFKD);
            case "Lowercase":
                return s -> s.toLowerCase(java.util.Locale.ROOT);
            case "Sequence": {
                List<UnaryOperator<String>> list = new ArrayList<>();
                JsonNode ns = n.path("normalizers");
                for (int i = 0; i < ns.size(); i++) {
                    list.add(normalizer(ns.get(i), file, path + ".normalizers[" + i + "]"));
                }
                return s -> {
                    for (UnaryOperator<String> f : list) {
                        s = f.apply(s);
                    }
                    return s;
                };
            }
            default:
                throw new TokenizerException(file + ": " + path + ".type=" + type + " is not supported");
        }
    }
}
