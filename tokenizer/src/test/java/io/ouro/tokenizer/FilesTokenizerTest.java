package io.ouro.tokenizer;

import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Tiktoken rank files give the same ids as the equivalent tokenizer.json; bad files name what is wrong. */
class FilesTokenizerTest {

    @Test
    void tiktokenRanksGiveGpt2Ids() throws Exception {
        byte[] ranks;
        try (InputStream in = com.knuddels.jtokkit.Encodings.class.getResourceAsStream("/com/knuddels/jtokkit/r50k_base.tiktoken")) {
            ranks = in.readAllBytes();
        }
        BpeTokenizer tik = BpeTokenizer.fromTiktoken(ranks, BpeTokenizer.GPT2_REGEX, Map.of("<|endoftext|>", 50256),
                "<|endoftext|>");
        BpeTokenizer json = BpeTokenizer.load(Corpora.tokenizer("gpt2"));
        List<String> docs = Corpora.fortunes("fortunes-en.txt");
        int same = 0;
        for (String d : docs) {
            if (java.util.Arrays.equals(json.encode(d), tik.encode(d))) {
                same++;
            }
        }
        System.out.printf("tiktoken r50k_base vs gpt2 tokenizer.json: %,d/%,d documents identical%n", same, docs.size());
        assertEquals(docs.size(), same);
        assertArrayEquals(json.encode("a<|endoftext|>b"), tik.encode("a<|endoftext|>b"));
        assertEquals(50256, tik.eosId());
    }

    static String error(String json) {
        return assertThrows(TokenizerException.class,
                () -> BpeTokenizer.fromJson(json.getBytes(StandardCharsets.UTF_8), "bad.json")).getMessage();
    }

    @Test
    void unsupportedOrBrokenFilesNameThePath() throws Exception {
        String gpt2 = Files.readString(Corpora.tokenizer("gpt2"));
        assertTrue(error(gpt2.replace("\"pre_tokenizer\": {\"type\": \"ByteLevel\"", "\"pre_tokenizer\": {\"type\": \"Metaspace\""))
                .contains("pre_tokenizer.type=Metaspace is not supported"), "pre-tokenizer");
        assertTrue(error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}").startsWith("bad.json: model.type=WordPiece"));
        assertTrue(error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}")
                .startsWith("bad.json: model.merges[0]: 'a' + 'b' refers to a token that is not in model.vocab"));
        assertTrue(error("{\"model\": ").startsWith("bad.json: not valid JSON"));
        assertTrue(error("{\"normalizer\": {\"type\": \"Precompiled\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}")
                .startsWith("bad.json: normalizer.type=Precompiled is not supported"));
    }
}
