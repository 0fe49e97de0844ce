package io.ouro.tokenizer;


import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
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

    BpeTokenizer(String name, Map<String, Integer> vocab, PairTable pairs, boolean ignoreMerges,
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
        return TokenizerJson.read(json, file);
    }

    /**
     * A tiktoken-style rank file ({@code base64token rank} per line): ranks are ids, and a pair merges
     * into the token its bytes concatenate to, in rank order. {@code specials} are added tokens.
     */
    public static BpeTokenizer fromTiktoken(byte[] ranks, String regex, Map<String, Integer> specials, String eos) {
        return Tiktoken.read(ranks, regex, specials, eos);
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
}
