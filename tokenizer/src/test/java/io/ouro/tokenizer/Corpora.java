package io.ouro.tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The real corpora in ../shared/data, cut into documents. */
final class Corpora {

    static final Path DATA = Path.of("..", "..", "shared", "data").toAbsolutePath().normalize();
    static final Path GPT2 = DATA.resolve("tokenizers/gpt2/tokenizer.json");
    static final Path QWEN3 = DATA.resolve("tokenizers/qwen3/tokenizer.json");

    private Corpora() {
    }

    static Path corpus(String name) {
        Path p = DATA.resolve("corpora").resolve(name);
        if (!Files.exists(p)) {
            p = Path.of("..", "shared", "data", "corpora", name).toAbsolutePath().normalize();
        }
        return p;
    }

    static Path tokenizer(String name) {
        Path p = DATA.resolve("tokenizers").resolve(name).resolve("tokenizer.json");
        if (!Files.exists(p)) {
            p = Path.of("..", "shared", "data", "tokenizers", name, "tokenizer.json").toAbsolutePath().normalize();
        }
        return p;
    }

    /** Fortune files: documents separated by lines holding only '%'. */
    static List<String> fortunes(String name) throws IOException {
        String text = Files.readString(corpus(name), StandardCharsets.UTF_8);
        List<String> docs = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (String line : text.split("\n", -1)) {
            if (line.equals("%")) {
                docs.add(cur.toString());
                cur.setLength(0);
            } else {
                cur.append(line).append('\n');
            }
        }
        if (!cur.toString().isBlank()) {
            docs.add(cur.toString());
        }
        return docs;
    }

    /** Tiny Shakespeare: documents are the blank-line separated speeches. */
    static List<String> shakespeare() throws IOException {
        String text = Files.readString(corpus("tinyshakespeare.txt"), StandardCharsets.UTF_8);
        return List.of(text.split("\n\n"));
    }

    static List<String> all(String corpus) throws IOException {
        return corpus.equals("tinyshakespeare.txt") ? shakespeare() : fortunes(corpus);
    }
}
