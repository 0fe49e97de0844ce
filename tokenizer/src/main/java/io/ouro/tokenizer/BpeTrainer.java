package io.ouro.tokenizer;

import io.ouro.tokenizer.cli.Args;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import scala.Tuple2;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Learns a byte-level BPE from a corpus as a Spark job and writes it as a HuggingFace {@code tokenizer.json}
 * (ByteLevel pre-tokenizer with GPT-2's regex, ByteLevel decoder, the given special tokens).
 *
 * <p>The executors pre-tokenize their partitions and count the pieces; the counts are summed across
 * executors ({@code reduceByKey}) and the merges are learned on the driver: repeatedly the most frequent
 * adjacent pair (ties: the pair whose merged token sorts first, then the left token), until the vocabulary
 * holds {@code vocabSize} ids. The alphabet is all 256 bytes, so any text encodes. Deterministic.
 *
 * <p>{@code ouro train-tokenizer --input URI --vocab-size N --output FILE [--special TOKEN,...] [--master URL]}
 */
public final class BpeTrainer {

    private BpeTrainer() {
    }

    public static void main(String[] args) throws Exception {
        Args a = Args.orExit(args, "train-tokenizer --input URI --vocab-size N --output FILE [--special TOKEN,...]"
                + " [--min-frequency N] [--master URL]");
        String input = a.required("input"), output = a.required("output");
        int vocab = a.integer("vocab-size"), minFrequency = a.integer("min-frequency", 2);
        SparkConf conf = new SparkConf().setAppName("ouro train-tokenizer");
        conf.setMaster(a.get("master", conf.get("spark.master", "local[*]")));
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            List<String> specials = List.of(a.get("special", "<|endoftext|>").split(","));
            long t0 = System.nanoTime();
            byte[] json = train(jsc, input, vocab, specials, minFrequency);
            org.apache.hadoop.fs.Path out = new org.apache.hadoop.fs.Path(output);
            try (var o = out.getFileSystem(jsc.hadoopConfiguration()).create(out, true)) {
                o.write(json);
            }
            System.out.printf("train-tokenizer: wrote %s (%d bytes) in %.1f s%n", out, json.length,
                    (System.nanoTime() - t0) / 1e9);
        }
    }

    /** Trains on the text files under {@code input} (any Hadoop FileSystem) and returns tokenizer.json. */
    public static byte[] train(JavaSparkContext jsc, String input, int vocabSize, List<String> specials, int minFrequency)
            throws IOException {
        jsc.setJobGroup("ouro-train-tokenizer", "train-tokenizer · counting pieces of " + input, false);
        Map<String, Long> counts;
        try {
            JavaPairRDD<String, Long> pieces = jsc.textFile(input).mapPartitionsToPair(lines -> {
                Pattern p = Pattern.compile(BpeTokenizer.GPT2_REGEX, Pattern.UNICODE_CHARACTER_CLASS);
                Map<String, Long> local = new HashMap<>();
                while (lines.hasNext()) {
                    String line = lines.next() + "\n";
                    Matcher m = p.matcher(line);
                    while (m.find()) {
                        if (m.end() > m.start()) {
                            local.merge(m.group(), 1L, Long::sum);
                        }
                    }
                }
                List<Tuple2<String, Long>> out = new ArrayList<>(local.size());
                local.forEach((k, v) -> out.add(new Tuple2<>(k, v)));
                return out.iterator();
            }).reduceByKey(Long::sum);
            counts = new HashMap<>(pieces.collectAsMap());
        } finally {
            jsc.clearJobGroup();
        }
        return learn(counts, vocabSize, specials, minFrequency);
    }

    /** Learns merges from piece counts (pieces are text; their UTF-8 bytes are the initial symbols). */
    static byte[] learn(Map<String, Long> pieceCounts, int vocabSize, List<String> specials, int minFrequency)
            throws IOException {
        List<String> vocab = new ArrayList<>();
        Map<String, Integer> ids = new HashMap<>();
        for (int b = 0; b < 256; b++) {
            String s = String.valueOf(ByteLevel.BYTE_TO_CHAR[b]);
            ids.put(s, vocab.size());
            vocab.add(s);
        }
        // words: symbol id sequences with their counts
        List<int[]> words = new ArrayList<>();
        List<Long> freq = new ArrayList<>();
        for (var e : new TreeMap<>(pieceCounts).entrySet()) {
            byte[] b = e.getKey().getBytes(StandardCharsets.UTF_8);
            int[] w = new int[b.length];
            for (int i = 0; i < b.length; i++) {
                w[i] = b[i] & 0xFF;
            }
            words.add(w);
            freq.add(e.getValue());
        }
        Map<Long, Long> pairCount = new HashMap<>();
        Map<Long, Set<Integer>> where = new HashMap<>();
        for (int wi = 0; wi < words.size(); wi++) {
            addPairs(words.get(wi), wi, freq.get(wi), pairCount, where, 1);
        }
        List<String[]> merges = new ArrayList<>();
        int target = vocabSize - specials.size();
        while (vocab.size() < target && !pairCount.isEmpty()) {
            long best = -1, bestCount = 0;
            String bestMerged = null, bestLeft = null;
            for (var e : pairCount.entrySet()) {
                long c = e.getValue();
                if (c < bestCount || c <= 0) {
                    continue;
                }
                String l = vocab.get((int) (e.getKey() >>> 32)), r = vocab.get((int) (long) e.getKey());
                String merged = l + r;
                if (c > bestCount || merged.compareTo(bestMerged) < 0
                        || (merged.equals(bestMerged) && l.compareTo(bestLeft) < 0)) {
                    best = e.getKey();
                    bestCount = c;
                    bestMerged = merged;
                    bestLeft = l;
                }
            }
            if (best < 0 || bestCount < minFrequency) {
                break;
            }
            int left = (int) (best >>> 32), right = (int) best;
            Integer existing = ids.get(bestMerged);
            int newId;
            if (existing != null) {
                newId = existing;
            } else {
                newId = vocab.size();
                vocab.add(bestMerged);
                ids.put(bestMerged, newId);
            }
            merges.add(new String[] {vocab.get(left), vocab.get(right)});
            for (int wi : new ArrayList<>(where.getOrDefault(best, Set.of()))) {
                int[] w = words.get(wi);
                long f = freq.get(wi);
                addPairs(w, wi, f, pairCount, where, -1);
                int[] nw = new int[w.length];
                int n = 0;
                for (int i = 0; i < w.length; i++) {
                    if (i + 1 < w.length && w[i] == left && w[i + 1] == right) {
                        nw[n++] = newId;
                        i++;
                    } else {
                        nw[n++] = w[i];
                    }
                }
                int[] merged = Arrays.copyOf(nw, n);
                words.set(wi, merged);
                addPairs(merged, wi, f, pairCount, where, 1);
            }
            pairCount.remove(best);
            where.remove(best);
        }
        return tokenizerJson(vocab, merges, specials);
    }

    private static void addPairs(int[] w, int wi, long f, Map<Long, Long> pairCount, Map<Long, Set<Integer>> where, int sign) {
        for (int i = 0; i + 1 < w.length; i++) {
            long k = ((long) w[i] << 32) | (w[i + 1] & 0xFFFFFFFFL);
            long c = pairCount.merge(k, sign * f, Long::sum);
            if (sign > 0) {
                where.computeIfAbsent(k, x -> new HashSet<>()).add(wi);
            } else if (c <= 0) {
                pairCount.remove(k);
            }
        }
    }

    static byte[] tokenizerJson(List<String> vocab, List<String[]> merges, List<String> specials) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode root = om.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int i = 0; i < specials.size(); i++) {
            ObjectNode t = added.addObject();
            t.put("id", vocab.size() + i);
            t.put("content", specials.get(i));
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
        }
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "ByteLevel");
        pre.put("add_prefix_space", false);
        pre.put("trim_offsets", true);
        pre.put("use_regex", true);
        ObjectNode post = root.putObject("post_processor");
        post.put("type", "ByteLevel");
        post.put("add_prefix_space", false);
        post.put("trim_offsets", false);
        post.put("use_regex", true);
        ObjectNode dec = root.putObject("decoder");
        dec.put("type", "ByteLevel");
        dec.put("add_prefix_space", false);
        dec.put("trim_offsets", true);
        dec.put("use_regex", true);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.put("continuing_subword_prefix", "");
        model.put("end_of_word_suffix", "");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        ObjectNode v = model.putObject("vocab");
        for (int i = 0; i < vocab.size(); i++) {
            v.put(vocab.get(i), i);
        }
        ArrayNode m = model.putArray("merges");
        for (String[] p : merges) {
            m.addArray().add(p[0]).add(p[1]);
        }
        return om.writerWithDefaultPrettyPrinter().writeValueAsBytes(root);
    }
}
