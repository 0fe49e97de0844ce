package io.ouro.tokenizer.job;

import io.ouro.tokenizer.BpeTokenizer;

import java.util.Arrays;

/** One tokenizer per executor JVM, built from the broadcast {@code tokenizer.json}. */
final class TokenizerCache {
    private static byte[] key;
    private static BpeTokenizer tok;

    private TokenizerCache() {
    }

    static synchronized BpeTokenizer tokenizer(byte[] json) {
        if (tok == null || !Arrays.equals(key, json)) {
            tok = BpeTokenizer.fromJson(json, "broadcast tokenizer.json");
            key = json;
        }
        return tok;
    }
}
