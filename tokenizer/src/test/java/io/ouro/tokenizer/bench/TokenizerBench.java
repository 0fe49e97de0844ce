package io.ouro.tokenizer.bench;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import com.knuddels.jtokkit.api.IntArrayList;
import io.ouro.tokenizer.BpeTokenizer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Single-thread encoding throughput of our BPE, HF tokenizers (DJL) and jtokkit (r50k_base = GPT-2's ranks)
 * on the same documents, after warm-up, checking that all three give the same ids.
 * {@code tests/bench.sh tokenizer [corpus file] [rounds]}.
 */
public final class TokenizerBench {

    public static void main(String[] args) throws Exception {
        Path data = Path.of("..", "shared", "data").toAbsolutePath().normalize();
        Path corpus = args.length > 0 ? Path.of(args[0]) : data.resolve("corpora/fortunes-en.txt");
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        List<String> docs = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (String line : Files.readString(corpus, StandardCharsets.UTF_8).split("\n", -1)) {
            if (line.equals("%")) {
                docs.add(cur.toString());
                cur.setLength(0);
            } else {
                cur.append(line).append('\n');
            }
        }
        docs.add(cur.toString());
        long bytes = 0;
        for (String d : docs) {
            bytes += d.getBytes(StandardCharsets.UTF_8).length;
        }
        BpeTokenizer ours = BpeTokenizer.load(data.resolve("tokenizers/gpt2/tokenizer.json"));
        Encoding jt = Encodings.newDefaultEncodingRegistry().getEncoding(EncodingType.R50K_BASE);
        try (HuggingFaceTokenizer hf = HuggingFaceTokenizer.builder()
                .optTokenizerPath(data.resolve("tokenizers/gpt2/tokenizer.json")).optAddSpecialTokens(false)
                .optTruncation(false).optPadding(false).build()) {
            int same = 0;
            for (String d : docs) {
                int[] o = ours.encode(d);
                long[] h = hf.encode(d, false, false).getIds();
                IntArrayList j = jt.encodeOrdinary(d);
                boolean eq = o.length == h.length && o.length == j.size();
                for (int i = 0; eq && i < o.length; i++) {
                    eq = o[i] == h[i] && o[i] == j.get(i);
                }
                same += eq ? 1 : 0;
            }
            System.out.printf(Locale.ROOT, "%s: %,d documents, %.2f MB; identical ids in all three: %,d/%,d%n",
                    corpus.getFileName(), docs.size(), bytes / 1e6, same, docs.size());
            if (same != docs.size()) {
                throw new IllegalStateException("the tokenizers disagree on " + (docs.size() - same) + " documents");
            }
            double oursS = Double.MAX_VALUE, hfS = Double.MAX_VALUE, jtS = Double.MAX_VALUE;
            long sink = 0;
            for (int r = 0; r < rounds; r++) {
                // fresh tokenizer each round: the piece cache starts empty, as on a new executor
                BpeTokenizer fresh = BpeTokenizer.load(data.resolve("tokenizers/gpt2/tokenizer.json"));
                long t0 = System.nanoTime();
                for (String d : docs) {
                    sink += fresh.encode(d).length;
                }
                long t1 = System.nanoTime();
                for (String d : docs) {
                    sink += hf.encode(d, false, false).getIds().length;
                }
                long t2 = System.nanoTime();
                for (String d : docs) {
                    sink += jt.encodeOrdinary(d).size();
                }
                long t3 = System.nanoTime();
                oursS = Math.min(oursS, (t1 - t0) / 1e9);
                hfS = Math.min(hfS, (t2 - t1) / 1e9);
                jtS = Math.min(jtS, (t3 - t2) / 1e9);
                System.out.printf(Locale.ROOT, "round %d: ours %.2f MB/s, hf %.2f MB/s, jtokkit %.2f MB/s%n", r,
                        bytes / 1e6 / ((t1 - t0) / 1e9), bytes / 1e6 / ((t2 - t1) / 1e9), bytes / 1e6 / ((t3 - t2) / 1e9));
            }
            double o = bytes / 1e6 / oursS, h = bytes / 1e6 / hfS, j = bytes / 1e6 / jtS;
            System.out.println("(best of " + rounds + " rounds, single thread; checksum " + sink + ")");
            System.out.printf(Locale.ROOT, "RESULT tokenizer ours_mb_s=%.2f hf_mb_s=%.2f jtokkit_mb_s=%.2f ratio=%.2f ratio_jtokkit=%.2f%n",
                    o, h, j, o / h, o / j);
        }
    }
}
