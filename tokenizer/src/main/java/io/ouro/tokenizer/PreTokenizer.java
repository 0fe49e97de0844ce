package io.ouro.tokenizer;

import java.util.List;

/** One pre-tokenization step: splits a piece into pieces. */
interface PreTokenizer {
    void split(String piece, List<String> out);
}
