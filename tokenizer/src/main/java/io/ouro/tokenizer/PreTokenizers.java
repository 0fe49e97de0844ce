package io.ouro.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The pre-tokenizers of {@code tokenizer.json} (ByteLevel, Split, Sequence) as steps that cut a piece into pieces. */
final class PreTokenizers {

    private PreTokenizers() {
    }

    /** The pre-tokenizer at JSON {@code path} of {@code file}, as steps appended to {@code out}. */
    static void fromJson(JsonNode n, String file, String path, List<PreTokenizer> out) {
        if (n == null || n.isNull() || n.isMissingNode()) {
            return;
        }
        String type = n.path("type").asText();
        switch (type) {
            case "Sequence": {
                JsonNode ps = n.path("pretokenizers");
                for (int i = 0; i < ps.size(); i++) {
                    fromJson(ps.get(i), file, path + ".pretokenizers[" + i + "]", out);
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
                    out.add(isolated(Pattern.compile(BpeTokenizer.GPT2_REGEX, Pattern.UNICODE_CHARACTER_CLASS)));
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
}
