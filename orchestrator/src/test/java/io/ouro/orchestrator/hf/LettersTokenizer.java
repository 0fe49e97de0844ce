package io.ouro.orchestrator.hf;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** A BPE tokenizer.json for tests: the letters a..p are ids 0..15, {@code <|endoftext|>} is 16, no merges. */
public final class LettersTokenizer {

    public static final int EOS = 16;

    private LettersTokenizer() {
    }

    /** Writes it as {@code dir/letters-tokenizer.json}. */
    public static Path write(Path dir) throws IOException {
        StringBuilder vocab = new StringBuilder();
        for (int i = 0; i < 16; i++) {
            vocab.append(i > 0 ? "," : "").append('"').append((char) ('a' + i)).append("\":").append(i);
        }
        Path f = dir.resolve("letters-tokenizer.json");
        Files.writeString(f, "{\"model\":{\"type\":\"BPE\",\"vocab\":{" + vocab + "},\"merges\":[]},"
                + "\"added_tokens\":[{\"id\":" + EOS + ",\"content\":\"<|endoftext|>\",\"special\":true}]}");
        return f;
    }
}
