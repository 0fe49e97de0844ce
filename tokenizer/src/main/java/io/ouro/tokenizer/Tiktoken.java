package io.ouro.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A tiktoken-style rank file ({@code base64token rank} per line) as a BPE tokenizer: ranks are ids, and a pair
 * merges into the token its bytes concatenate to, in rank order.
 */
final class Tiktoken {

    private Tiktoken() {
    }

    /** The tokenizer of a rank file; {@code specials} are added tokens, {@code regex} the pre-tokenizer. */
    static BpeTokenizer read(byte[] ranks, String regex, Map<String, Integer> specials, String eos) {
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
        List<BpeTokenizer.AddedToken> added = new ArrayList<>();
        specials.forEach((k, v) -> added.add(new BpeTokenizer.AddedToken(v, k, false, false)));
        List<PreTokenizer> pre = List.of(PreTokenizers.isolated(Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS)));
        return new BpeTokenizer("tiktoken", vocab, pairs, false, s -> s, pre, added, eos, BpeTokenizer.sha256(ranks));
    }
}
