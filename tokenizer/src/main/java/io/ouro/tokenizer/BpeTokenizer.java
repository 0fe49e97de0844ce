package io.ouro.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A byte-level BPE tokenizer that reads HuggingFace {@code tokenizer.json} files (model BPE; normalizers
 * NFC, NFD, NFKC, NFKD, Lowercase and Sequence; pre-tokenizers ByteLevel, Split and Sequence; added and
 * special tokens; the ByteLevel decoder) and tiktoken rank files, and gives the ids HF tokenizers gives.
 *
 * <p>Encoding: the text is cut at added tokens (longest match first), each other span is normalized and
 * pre-tokenized into pieces, and each piece's UTF-8 bytes are merged by BPE: repeatedly the adjacent pair
 * with the lowest merge rank, leftmost first. Pieces are cached. Instances are immutable and thread-safe
 * apart from the cache, which is per thread.
 */
public final class BpeTokenizer implements TextTokenizer {

    /** GPT-2's pre-tokenizer regex (ByteLevel with use_regex), as HF and tiktoken's r50k use it. */
    public static final String GPT2_REGEX =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    private final String name;
    private final String[] tokens;          // id -> token string (byte-level chars, or added token content)
    private final boolean[] added;
    private final Map<String, Integer> vocab;
    private final int[] byteIds = new int[256];
    private final PairTable pairs;
    private final boolean ignoreMerges;
    private final UnaryOperator<String> normalizer;
    private final List<PreTokenizer> preTokenizers;
    private final Pattern addedPattern;
    private final Map<String, Integer> addedIds;
    private final Map<String, int[]> addedStrip;
    private final int eosId;
    private final String fingerprint;
    private final ThreadLocal<HashMap<String, int[]>> cache = ThreadLocal.withInitial(HashMap::new);

    /** One pre-tokenization step: splits a piece into pieces. */
    interface PreTokenizer {
        void split(String piece, List<String> out);
    }

    private BpeTokenizer(String name, Map<String, Integer> vocab, PairTable pairs, boolean ignoreMerges,
                         UnaryOperator<String> normalizer, List<PreTokenizer> pre, List<AddedToken> addedTokens,
                         String eosToken, String fingerprint) {
        this.name = name;
        this.vocab = vocab;
        this.pairs = pairs;
        this.ignoreMerges = ignoreMerges;
        this.normalizer = normalizer;
        this.preTokenizers = pre;
        this.fingerprint = fingerprint;
        int max = -1;
        for (int id : vocab.values()) {
            max = Math.max(max, id);
        }
        for (AddedToken a : addedTokens) {
            max = Math.max(max, a.id);
        }
        tokens = new String[max + 1];
        added = new boolean[max + 1];
        vocab.forEach((k, v) -> tokens[v] = k);
        addedIds = new HashMap<>();
        addedStrip = new HashMap<>();
        List<AddedToken> sorted = new ArrayList<>(addedTokens);
        sorted.sort(Comparator.comparingInt((AddedToken a) -> -a.content.length()));
        StringBuilder alt = new StringBuilder();
        for (AddedToken a : sorted) {
            tokens[a.id] = a.content;
            added[a.id] = true;
            addedIds.put(a.content, a.id);
            addedStrip.put(a.content, new int[] {a.lstrip ? 1 : 0, a.rstrip ? 1 : 0});
            alt.append(alt.length() == 0 ? "" : "|");
            alt.append(a.lstrip ? "\\s*" : "").append(Pattern.quote(a.content)).append(a.rstrip ? "\\s*" : "");
        }
        addedPattern = alt.length() == 0 ? null : Pattern.compile(alt.toString());
        for (int b = 0; b < 256; b++) {
            Integer id = vocab.get(String.valueOf(ByteLevel.BYTE_TO_CHAR[b]));
            byteIds[b] = id == null ? -1 : id;
        }
        Integer eos = eosToken == null ? null : (addedIds.containsKey(eosToken) ? addedIds.get(eosToken) : vocab.get(eosToken));
        this.eosId = eos == null ? -1 : eos;
    }

    record AddedToken(int id, String content, boolean lstrip, boolean rstrip) {
    }

    // ---------------------------------------------------------------- loading

    public static BpeTokenizer load(Path path) {
        try {
            return fromJson(Files.readAllBytes(path), path.toString());
        } catch (IOException e) {
            throw new TokenizerException(path + ": cannot read: " + e.getMessage(), e);
        }
    }

    public static BpeTokenizer fromJson(byte[] json) {
        return fromJson(json, "tokenizer.json");
    }

    /** Reads a HuggingFace tokenizer.json; unsupported parts are errors naming the JSON path. */
    public static BpeTokenizer fromJson(byte[] json, String file) {
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
        List<AddedToken> addedTokens = new ArrayList<>();
        JsonNode at = root.path("added_tokens");
        for (int i = 0; i < at.size(); i++) {
            JsonNode a = at.get(i);
            if (a.path("single_word").asBoolean(false)) {
                throw new TokenizerException(file + ": added_tokens[" + i + "].single_word=true is not supported");
            }
            addedTokens.add(new AddedToken(a.path("id").asInt(), a.path("content").asText(),
                    a.path("lstrip").asBoolean(false), a.path("rstrip").asBoolean(false)));
        }
        UnaryOperator<String> norm = normalizer(root.path("normalizer"), file, "normalizer");
        List<PreTokenizer> pre = new ArrayList<>();
        preTokenizer(root.path("pre_tokenizer"), file, "pre_tokenizer", pre);
        JsonNode dec = root.path("decoder");
        if (!dec.isMissingNode() && !dec.isNull() && !"ByteLevel".equals(dec.path("type").asText())) {
            throw new TokenizerException(file + ": decoder.type=" + dec.path("type").asText() + " is not supported");
        }
        return new BpeTokenizer(file, vocab, pairs, model.path("ignore_merges").asBoolean(false), norm, pre,
                addedTokens, "<|endoftext|>", sha256(json));
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

    static void preTokenizer(JsonNode n, String file, String path, List<PreTokenizer> out) {
        if (n == null || n.isNull() || n.isMissingNode()) {
            return;
        }
        String type = n.path("type").asText();
        switch (type) {
            case "Sequence": {
                JsonNode ps = n.path("pretokenizers");
                for (int i = 0; i < ps.size(); i++) {
                    preTokenizer(ps.get(i), file, path + ".pretokenizers[" + i + "]", out);
                }
                return;
            }
            case "ByteLevel": {
                boolean prefix = n.path("add_prefix_space").asBoolean(false);
                boolean regex = n.path("use_regex").asBoolean(true);
                if (prefix) {
                    out.add((piece, o) -> o.add(piece.startsWith(" ") ? piece : " " + piece));
                }
                if (regex) {
                    out.add(isolated(Pattern.compile(GPT2_REGEX, Pattern.UNICODE_CHARACTER_CLASS)));
                }
                return;
            }
            case "Split": {
                JsonNode pat = n.path("pattern");
                Pattern p;
                if (pat.has("Regex")) {
                    p = Pattern.compile(pat.path("Regex").asText(), Pattern.UNICODE_CHARACTER_CLASS);
                } else if (pat.has("String")) {
                    p = Pattern.compile(Pattern.quote(pat.path("String").asText()));
                } else {
                    throw new TokenizerException(file + ": " + path + ".pattern: expected Regex or String");
                }
                if (n.path("invert").asBoolean(false)) {
                    throw new TokenizerException(file + ": " + path + ".invert=true is not supported");
                }
                String behavior = n.path("behavior").asText("Isolated");
                switch (behavior) {
                    case "Isolated" -> out.add(isolated(p));
                    case "Removed" -> out.add(removed(p));
                    case "MergedWithPrevious" -> out.add(merged(p, true));
                    case "MergedWithNext" -> out.add(merged(p, false));
                    default -> throw new TokenizerException(file + ": " + path + ".behavior=" + behavior
                            + " is not supported");
                }
                return;
            }
            default:
                throw new TokenizerException(file + ": " + path + ".type=" + type + " is not supported");
        }
    }

    /** Matches and the text between them, each its own piece. */
    static PreTokenizer isolated(Pattern p) {
        return (piece, out) -> {
            Matcher m = p.matcher(piece);
            int last = 0;
            while (m.find()) {
                if (m.end() == m.start()) {
                    continue;
                }
                if (m.start() > last) {
                    out.add(piece.substring(last, m.start()));
                }
                out.add(piece.substring(m.start(), m.end()));
                last = m.end();
            }
            if (last < piece.length()) {
                out.add(piece.substring(last));
            }
        };
    }

    static PreTokenizer removed(Pattern p) {
        return (piece, out) -> {
            Matcher m = p.matcher(piece);
            int last = 0;
            while (m.find()) {
                if (m.start() > last) {
                    out.add(piece.substring(last, m.start()));
                }
                last = m.end();
            }
            if (last < piece.length()) {
                out.add(piece.substring(last));
            }
        };
    }

    static PreTokenizer merged(Pattern p, boolean withPrevious) {
        return (piece, out) -> {
            Matcher m = p.matcher(piece);
            int start = 0;
            while (m.find()) {
                if (m.end() == m.start()) {
                    continue;
                }
                if (withPrevious) {
                    out.add(piece.substring(start, m.end()));
                    start = m.end();
                } else {
                    if (m.start() > start) {
                        out.add(piece.substring(start, m.start()));
                    }
                    start = m.start();
                }
            }
            if (start < piece.length()) {
                out.add(piece.substring(start));
            }
        };
    }

    /**
     * A tiktoken-style rank file ({@code base64token rank} per line): ranks are ids, and a pair merges
     * into the token its bytes concatenate to, in rank order. {@code specials} are added tokens.
     */
    public static BpeTokenizer fromTiktoken(byte[] ranks, String regex, Map<String, Integer> specials, String eos) {
        Map<String, Integer> vocab = new HashMap<>();
        List<byte[]> byId = new ArrayList<>();
        String text = new String(ranks, StandardCharsets.US_ASCII);
        int lineNo = 0;
        for (String line : text.split("\n")) {
            lineNo++;
            if (line.isBlank()) {
                continue;
            }
            String[] p = line.trim().split(" ");
            if (p.length != 2) {
                throw new TokenizerException("tiktoken ranks line " + lineNo + ": expected 'base64 rank'");
            }
            byte[] b = Base64.getDecoder().decode(p[0]);
            int rank = Integer.parseInt(p[1]);
            vocab.put(ByteLevel.map(b, 0, b.length), rank);
            while (byId.size() <= rank) {
                byId.add(null);
            }
            byId.set(rank, b);
        }
        PairTable pairs = new PairTable(vocab.size() * 4);
        for (int id = 0; id < byId.size(); id++) {
            byte[] b = byId.get(id);
            if (b == null || b.length < 2) {
                continue;
            }
            for (int cut = 1; cut < b.length; cut++) {
                Integer l = vocab.get(ByteLevel.map(b, 0, cut)), r = vocab.get(ByteLevel.map(b, cut, b.length - cut));
                if (l != null && r != null) {
                    pairs.put(l, r, id, id);
                }
            }
        }
        List<AddedToken> added = new ArrayList<>();
        specials.forEach((k, v) -> added.add(new AddedToken(v, k, false, false)));
        List<PreTokenizer> pre = List.of(isolated(Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS)));
        return new BpeTokenizer("tiktoken", vocab, pairs, false, s -> s, pre, added, eos, sha256(ranks));
    }

    // ---------------------------------------------------------------- encoding

    @Override
    public int[] encode(String text) {
        IntList out = new IntList(text.length() / 3 + 4);
        encodeTo(text, out);
        return out.toArray();
    }

    /** Appends the ids of {@code text} to {@code out}. */
    public void encodeTo(String text, IntList out) {
        if (addedPattern == null) {
            encodeSpan(text, out);
            return;
        }
        Matcher m = addedPattern.matcher(text);
        int last = 0;
        while (m.find()) {
            if (m.start() > last) {
                encodeSpan(text.substring(last, m.start()), out);
            }
            out.add(addedIds.get(m.group().strip().isEmpty() ? m.group() : core(m.group())));
            last = m.end();
        }
        if (last < text.length()) {
            encodeSpan(text.substring(last), out);
        }
    }

    /** The added token inside a match that may carry lstrip/rstrip whitespace. */
    private String core(String match) {
        if (addedIds.containsKey(match)) {
            return match;
        }
        String s = match.strip();
        if (addedIds.containsKey(s)) {
            return s;
        }
        for (String k : addedIds.keySet()) {
            if (match.contains(k)) {
                return k;
            }
        }
        throw new IllegalStateException("no added token in '" + match + "'");
    }

    private void encodeSpan(String span, IntList out) {
        String s = normalizer.apply(span);
        List<String> pieces = new ArrayList<>();
        pieces.add(s);
        for (PreTokenizer p : preTokenizers) {
            List<String> next = new ArrayList<>(pieces.size() * 4);
            for (String piece : pieces) {
                p.split(piece, next);
            }
            pieces = next;
        }
        HashMap<String, int[]> c = cache.get();
        for (String piece : pieces) {
            int[] ids = c.get(piece);
            if (ids == null) {
                ids = bpe(piece.getBytes(StandardCharsets.UTF_8));
                if (c.size() > 200_000) {
                    c.clear();
                }
                c.put(piece, ids);
            }
            out.addAll(ids);
        }
    }

    /** BPE over one piece's bytes: merge the lowest-ranked adjacent pair, leftmost first, until none merges. */
    int[] bpe(byte[] bytes) {
        int n = bytes.length;
        if (ignoreMerges) {
            Integer whole = vocab.get(ByteLevel.map(bytes, 0, n));
            if (whole != null) {
                return new int[] {whole};
            }
        }
        int[] sym = new int[n];
        for (int i = 0; i < n; i++) {
            int id = byteIds[bytes[i] & 0xFF];
            if (id < 0) {
                throw new TokenizerException(name + ": byte 0x" + Integer.toHexString(bytes[i] & 0xFF)
                        + " has no token in the vocabulary");
            }
            sym[i] = id;
        }
        // ranks of adjacent pairs, recomputed only around each merge
        long[] pr = new long[Math.max(0, n - 1)];
        for (int i = 0; i + 1 < n; i++) {
            pr[i] = pairs.get(sym[i], sym[i + 1]);
        }
        while (n > 1) {
            int best = -1;
            long bestRank = Long.MAX_VALUE;
            for (int i = 0; i + 1 < n; i++) {
                long v = pr[i];
                if (v >= 0 && (v >>> 32) < bestRank) {
                    bestRank = v >>> 32;
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            sym[best] = (int) pr[best];
            System.arraycopy(sym, best + 2, sym, best + 1, n - best - 2);
            System.arraycopy(pr, best + 1, pr, best, n - best - 2);
            n--;
            if (best > 0) {
                pr[best - 1] = pairs.get(sym[best - 1], sym[best]);
            }
            if (best + 1 < n) {
                pr[best] = pairs.get(sym[best], sym[best + 1]);
            }
        }
        return java.util.Arrays.copyOf(sym, n);
    }

    // ---------------------------------------------------------------- decoding

    @Override
    public String decode(int[] ids) {
        StringBuilder text = new StringBuilder();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int id : ids) {
            if (id < 0 || id >= tokens.length || tokens[id] == null) {
                throw new IllegalArgumentException("id " + id + " is not in the vocabulary of " + name);
            }
            if (added[id]) {
                text.append(new String(bytes.toByteArray(), StandardCharsets.UTF_8));
                bytes.reset();
                text.append(tokens[id]);
            } else {
                byte[] b = ByteLevel.unmap(tokens[id]);
                if (b == null) {
                    text.append(new String(bytes.toByteArray(), StandardCharsets.UTF_8)).append(tokens[id]);
                    bytes.reset();
                } else {
                    bytes.writeBytes(b);
                }
            }
        }
        return text.append(new String(bytes.toByteArray(), StandardCharsets.UTF_8)).toString();
    }

    @Override
    public int vocabSize() {
        return tokens.length;
    }

    @Override
    public int eosId() {
        if (eosId < 0) {
            throw new IllegalStateException(name + " has no <|endoftext|> token; give the EOS token explicitly");
        }
        return eosId;
    }

    /** The id of a token (added or in the vocabulary), or -1. */
    public int tokenId(String token) {
        Integer a = addedIds.get(token);
        if (a != null) {
            return a;
        }
        Integer v = vocab.get(token);
        return v == null ? -1 : v;
    }

    @Override
    public String fingerprint() {
        return fingerprint;
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A growable int array. */
    public static final class IntList implements Iterable<Integer> {
        private int[] a;
        private int n;

        public IntList(int capacity) {
            a = new int[Math.max(4, capacity)];
        }

        public void add(int v) {
            if (n == a.length) {
                a = java.util.Arrays.copyOf(a, a.length * 2);
            }
            a[n++] = v;
        }

        void addAll(int[] v) {
            if (n + v.length > a.length) {
                a = java.util.Arrays.copyOf(a, Math.max(a.length * 2, n + v.length));
            }
            System.arraycopy(v, 0, a, n, v.length);
            n += v.length;
        }

        public int size() {
            return n;
        }

        public int get(int i) {
            return a[i];
        }

        public void clear() {
            n = 0;
        }

        public int[] toArray() {
            return java.util.Arrays.copyOf(a, n);
        }

        @Override
        public Iterator<Integer> iterator() {
            return java.util.stream.IntStream.range(0, n).map(i -> a[i]).iterator();
        }
    }
}
