package io.ouro.tokenizer.shard;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code manifest.json}, the one description of a tokenized source: its tokenizer, its shards in stream
 * order and the job's bad-record accounting. This record is its only reader and writer; both stream, so a
 * manifest of millions of shards loads in seconds into a {@link ShardTable}.
 *
 * <p>Each shard lists {@code path} (relative to the manifest), {@code documents}, {@code tokens},
 * {@code bytes}, {@code sha256} (of the whole file, checked by {@code ouro inspect --verify}),
 * {@code index_offset} and {@code crc_key} (the batch index, {@link ShardFormat}). Manifests of
 * {@code token-shard-1} have no index fields; they are read so that {@code ouro reshard} can rewrite them.
 */
public record Manifest(String format, String source, String input, String tokenizer, String tokenizerSha256,
                       int vocabSize, int eosId, String tokenType, int batchTokens, ShardTable shards,
                       long bytesIn, Map<String, Long> badRecords, Map<String, List<String>> badRecordSamples,
                       String badRecordPolicy) {

    private static final JsonFactory JSON = new JsonFactory();

    public boolean uint16() {
        return tokenType.equals("uint16");
    }

    public long tokens() {
        return shards.totalTokens();
    }

    /** Reads and validates a manifest; errors name the file and the field. */
    public static Manifest read(FileSystem fs, Path p) throws IOException {
        try (InputStream in = fs.open(p)) {
            return parse(in, p.toString());
        }
    }

    static Manifest parse(InputStream in, String file) throws IOException {
        Map<String, Object> top = new LinkedHashMap<>();
        ShardTable shards = new ShardTable();
        long totalTokens = -1, totalDocuments = -1;
        try (JsonParser j = JSON.createParser(in)) {
            expect(j, j.nextToken(), JsonToken.START_OBJECT, file, "(top level)");
            while (j.nextToken() == JsonToken.FIELD_NAME) {
                String k = j.currentName();
                JsonToken t = j.nextToken();
                switch (k) {
                    case "shards" -> readShards(j, t, shards, file);
                    case "totals" -> {
                        expect(j, t, JsonToken.START_OBJECT, file, "totals");
                        while (j.nextToken() == JsonToken.FIELD_NAME) {
                            String f = j.currentName();
                            j.nextToken();
                            if (f.equals("tokens")) {
                                totalTokens = number(j, file, "totals.tokens");
                            } else if (f.equals("documents")) {
                                totalDocuments = number(j, file, "totals.documents");
                            } else if (f.equals("bytes_in")) {
                                top.put("bytes_in", number(j, file, "totals.bytes_in"));
                            } else {
                                j.skipChildren();
                            }
                        }
                    }
                    case "bad_records" -> {
                        Map<String, Long> bad = new LinkedHashMap<>();
                        expect(j, t, JsonToken.START_OBJECT, file, "bad_records");
                        while (j.nextToken() == JsonToken.FIELD_NAME) {
                            String f = j.currentName();
                            j.nextToken();
                            bad.put(f, number(j, file, "bad_records." + f));
                        }
                        top.put(k, bad);
                    }
                    case "bad_record_samples" -> {
                        Map<String, List<String>> s = new LinkedHashMap<>();
                        expect(j, t, JsonToken.START_OBJECT, file, "bad_record_samples");
                        while (j.nextToken() == JsonToken.FIELD_NAME) {
                            String f = j.currentName();
                            expect(j, j.nextToken(), JsonToken.START_ARRAY, file, "bad_record_samples." + f);
                            List<String> l = new ArrayList<>();
                            while (j.nextToken() != JsonToken.END_ARRAY) {
                                l.add(j.getText());
                            }
                            s.put(f, l);
                        }
                        top.put(k, s);
                    }
                    default -> {
                        if (t.isScalarValue()) {
                            top.put(k, t.isNumeric() ? (Object) j.getLongValue() : j.getText());
                        } else {
                            j.skipChildren();
                        }
                    }
                }
            }
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new ShardException(file + ": not valid JSON: " + e.getOriginalMessage() + " at "
                    + e.getLocation(), e);
        }
        String format = str(top, "format", file);
        if (!format.equals(ShardFormat.FORMAT) && !format.equals(ShardFormat.FORMAT_1)) {
            throw new ShardException(file + ": format: '" + format + "' is not " + ShardFormat.FORMAT
                    + " (not a manifest written by ouro tokenize?)");
        }
        boolean v2 = format.equals(ShardFormat.FORMAT);
        if (totalTokens >= 0 && totalTokens != shards.totalTokens()) {
            throw new ShardException(file + ": totals.tokens: " + totalTokens + ", but the shards hold "
                    + shards.totalTokens());
        }
        if (totalDocuments >= 0 && totalDocuments != shards.totalDocuments()) {
            throw new ShardException(file + ": totals.documents: " + totalDocuments + ", but the shards hold "
                    + shards.totalDocuments());
        }
        String type = str(top, "token_type", file);
        if (!type.equals("uint16") && !type.equals("int32")) {
            throw new ShardException(file + ": token_type: expected uint16 or int32, got " + type);
        }
        @SuppressWarnings("unchecked")
        Map<String, Long> bad = (Map<String, Long>) top.getOrDefault("bad_records", Map.of());
        @SuppressWarnings("unchecked")
        Map<String, List<String>> samples = (Map<String, List<String>>) top.getOrDefault("bad_record_samples", Map.of());
        return new Manifest(format, str(top, "source", file), (String) top.getOrDefault("input", ""),
                (String) top.getOrDefault("tokenizer", ""), str(top, "tokenizer_sha256", file),
                (int) num(top, "vocab_size", file), (int) num(top, "eos_id", file), type,
                v2 ? (int) num(top, "batch_tokens", file) : 0, shards, (long) top.getOrDefault("bytes_in", 0L), bad,
                samples, (String) top.getOrDefault("bad_record_policy", ""));
    }

    private static void readShards(JsonParser j, JsonToken t, ShardTable shards, String file) throws IOException {
        expect(j, t, JsonToken.START_ARRAY, file, "shards");
        while (j.nextToken() != JsonToken.END_ARRAY) {
            String at = "shards[" + shards.size() + "]";
            expect(j, j.currentToken(), JsonToken.START_OBJECT, file, at);
            String path = null, sha = "";
            long docs = -1, tokens = -1, bytes = -1, index = -1, key = 0;
            while (j.nextToken() == JsonToken.FIELD_NAME) {
                String f = j.currentName();
                j.nextToken();
                switch (f) {
                    case "path" -> path = j.getText();
                    case "documents" -> docs = number(j, file, at + ".documents");
                    case "tokens" -> tokens = number(j, file, at + ".tokens");
                    case "bytes" -> bytes = number(j, file, at + ".bytes");
                    case "index_offset" -> index = number(j, file, at + ".index_offset");
                    case "sha256" -> sha = j.getText();
                    case "crc_key" -> {
                        try {
                            key = HexFormat.fromHexDigitsToLong(j.getText());
                        } catch (IllegalArgumentException e) {
                            throw new ShardException(file + ": " + at + ".crc_key: expected 16 hex digits, got "
                                    + j.getText());
                        }
                    }
                    default -> j.skipChildren();
                }
            }
            if (path == null || tokens < 0 || docs < 0) {
                throw new ShardException(file + ": " + at + ": path, documents and tokens are required");
            }
            if (!sha.isEmpty() && !sha.matches("[0-9a-f]{64}")) {
                throw new ShardException(file + ": " + at + ".sha256: expected 64 hex digits, got " + sha);
            }
            shards.add(new ShardTable.Entry(path, docs, tokens, bytes, sha, index, key));
        }
    }

    private static void expect(JsonParser j, JsonToken got, JsonToken want, String file, String field)
            throws ShardException {
        if (got != want) {
            throw new ShardException(file + ": " + field + ": expected " + (want == JsonToken.START_OBJECT ? "an object"
                    : "an array") + ", got " + got + " at " + j.currentLocation());
        }
    }

    private static long number(JsonParser j, String file, String field) throws IOException {
        if (j.currentToken() != JsonToken.VALUE_NUMBER_INT || j.getLongValue() < 0) {
            throw new ShardException(file + ": " + field + ": expected an integer >= 0, got " + j.getText());
        }
        return j.getLongValue();
    }

    private static String str(Map<String, Object> top, String k, String file) throws ShardException {
        if (!(top.get(k) instanceof String s)) {
            throw new ShardException(file + ": " + k + ": required (a string)");
        }
        return s;
    }

    private static long num(Map<String, Object> top, String k, String file) throws ShardException {
        if (!(top.get(k) instanceof Long v)) {
            throw new ShardException(file + ": " + k + ": required (an integer)");
        }
        return v;
    }

    /** The manifest as written: pretty-printed JSON, the shards in order. */
    public byte[] toJson() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        write(out);
        return out.toByteArray();
    }

    /** Writes the manifest to {@code out} (streamed: a manifest of millions of shards is never one string). */
    public void write(java.io.OutputStream out) throws IOException {
        try (JsonGenerator g = JSON.createGenerator(out).useDefaultPrettyPrinter()) {
            g.writeStartObject();
            g.writeStringField("format", format);
            g.writeStringField("source", source);
            g.writeStringField("input", input);
            g.writeStringField("tokenizer", tokenizer);
            g.writeStringField("tokenizer_sha256", tokenizerSha256);
            g.writeNumberField("vocab_size", vocabSize);
            g.writeNumberField("eos_id", eosId);
            g.writeStringField("token_type", tokenType);
            g.writeNumberField("batch_tokens", batchTokens);
            g.writeArrayFieldStart("shards");
            for (int i = 0; i < shards.size(); i++) {
                ShardTable.Entry e = shards.get(i);
                g.writeStartObject();
                g.writeStringField("path", e.path());
                g.writeNumberField("documents", e.documents());
                g.writeNumberField("tokens", e.tokens());
                g.writeNumberField("bytes", e.bytes());
                g.writeStringField("sha256", e.sha256());
                g.writeNumberField("index_offset", e.indexOffset());
                g.writeStringField("crc_key", HexFormat.of().toHexDigits(e.crcKey()));
                g.writeEndObject();
            }
            g.writeEndArray();
            g.writeObjectFieldStart("totals");
            g.writeNumberField("documents", shards.totalDocuments());
            g.writeNumberField("tokens", shards.totalTokens());
            g.writeNumberField("bytes_in", bytesIn);
            g.writeNumberField("shards", shards.size());
            g.writeEndObject();
            g.writeObjectFieldStart("bad_records");
            for (var e : badRecords.entrySet()) {
                g.writeNumberField(e.getKey(), e.getValue());
            }
            g.writeEndObject();
            g.writeObjectFieldStart("bad_record_samples");
            for (var e : badRecordSamples.entrySet()) {
                g.writeArrayFieldStart(e.getKey());
                for (String s : e.getValue()) {
                    g.writeString(s);
                }
                g.writeEndArray();
            }
            g.writeEndObject();
            g.writeStringField("bad_record_policy", badRecordPolicy);
            g.writeEndObject();
        }
    }
}
