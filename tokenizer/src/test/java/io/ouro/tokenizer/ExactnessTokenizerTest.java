package io.ouro.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our BPE against HF tokenizers (through DJL, offline, truncation and padding off, no special tokens
 * added) on every document of every shared corpus, with GPT-2's and Qwen3's tokenizer files, which differ
 * in pre-tokenizer regex and normalisation; plus texts holding their special tokens, and the round trip.
 */
class ExactnessTokenizerTest {

    static final String[] CORPORA = {"fortunes-en.txt", "fortunes-de.txt", "fortunes-ru.txt", "tinyshakespeare.txt"};

    static HuggingFaceTokenizer hf(String name) throws Exception {
        return HuggingFaceTokenizer.builder().optTokenizerPath(Corpora.tokenizer(name)).optAddSpecialTokens(false)
                .optTruncation(false).optPadding(false).build();
    }

    void exactOnEveryDocument(String name) throws Exception {
        BpeTokenizer ours = BpeTokenizer.load(Corpora.tokenizer(name));
        try (HuggingFaceTokenizer theirs = hf(name)) {
            List<String> report = new ArrayList<>();
            for (String corpus : CORPORA) {
                List<String> docs = Corpora.all(corpus);
                int same = 0, roundTrip = 0;
                long tokens = 0;
                String firstDiff = null;
                for (String d : docs) {
                    long[] h = theirs.encode(d, false, false).getIds();
                    int[] o = ours.encode(d);
                    tokens += o.length;
                    boolean eq = h.length == o.length;
                    for (int i = 0; eq && i < o.length; i++) {
                        eq = h[i] == o[i];
                    }
                    if (eq) {
                        same++;
                    } else if (firstDiff == null) {
                        firstDiff = "'" + d.substring(0, Math.min(80, d.length())) + "': ours "
                                + Arrays.toString(Arrays.copyOf(o, Math.min(20, o.length))) + " hf "
                                + Arrays.toString(Arrays.copyOf(h, Math.min(20, h.length)));
                    }
                    if (ours.decode(o).equals(d)) {
                        roundTrip++;
                    }
                }
                String line = String.format("%s on %s: %,d/%,d documents identical to HF, %,d/%,d round trips, %,d tokens",
                        name, corpus, same, docs.size(), roundTrip, docs.size(), tokens);
                System.out.println(line);
                report.add(line);
                assertEquals(docs.size(), same, line + "; first difference: " + firstDiff);
                assertEquals(docs.size(), roundTrip, line);
            }
        }
    }

    @Test
    void gpt2IsExactOnEveryDocument() throws Exception {
        exactOnEveryDocument("gpt2");
    }

    @Test
    void qwen3IsExactOnEveryDocument() throws Exception {
        exactOnEveryDocument("qwen3");
    }

    @Test
    void specialTokensAndEdgeCases() throws Exception {
        String[] texts = {
            "Hello<|endoftext|>world", "<|endoftext|>", "a <|endoftext|> b<|endoftext|><|endoftext|>c",
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>",
            "", " ", "   leading and trailing   ", "tabs\tand\u00a0nbsp\u2003em space\u3000ideographic",
            "numbers 1234567 and 3.14159, dates 2026-11-28", "emoji 🙂🚀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "café cafe\u0301 Å Å",
            "I'm you're he'll we've they'd IT'S DON'T", "ſome Kelvin K sign", "\r\n\r\nwindows\r\nlines\n\n\n",
            "中文文本，带标点。日本語のテキスト", "x".repeat(3000), "=".repeat(500) + "\n" + "- ".repeat(200),
        };
        for (String name : new String[] {"gpt2", "qwen3"}) {
            BpeTokenizer ours = BpeTokenizer.load(Corpora.tokenizer(name));
            try (HuggingFaceTokenizer theirs = hf(name)) {
                for (String t : texts) {
                    long[] h = theirs.encode(t, false, false).getIds();
                    int[] o = ours.encode(t);
                    assertEquals(Arrays.toString(h), Arrays.toString(o), name + " on '" + t + "'");
                    // Qwen3 normalises to NFC: its round trip gives the NFC form of the text
                    String expected = name.equals("qwen3") ? java.text.Normalizer.normalize(t, java.text.Normalizer.Form.NFC) : t;
                    assertEquals(expected, ours.decode(o), name + " round trip of '" + t + "'");
                }
            }
            assertEquals(name.equals("gpt2") ? 50256 : 151643, ours.eosId());
            assertEquals(name.equals("gpt2") ? 50257 : 151669, ours.vocabSize());
            assertTrue(ours.fingerprint().matches("[0-9a-f]{64}"));
        }
    }
}
