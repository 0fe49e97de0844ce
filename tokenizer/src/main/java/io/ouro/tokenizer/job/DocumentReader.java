package io.ouro.tokenizer.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One input file's documents: splits it into records by {@code --format} (text lines or
 * {@code --separator}-delimited blocks, JSON lines, Parquet rows), decodes them, and hands each good
 * document to a {@link Sink}. Bad records are counted per reason ({@link TokenizeJob#REASONS}) with up to
 * 5 sample locations ({@code file:byte offset}, the row number for Parquet).
 */
final class DocumentReader {

    /** Where good documents go. */
    interface Sink {
        void document(String text) throws IOException;
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int SAMPLES = 5;

    private final TokenizeJob.Options o;
    private final Sink sink;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    final Map<String, Long> bad = new TreeMap<>();
    final Map<String, List<String>> samples = new TreeMap<>();
    long bytesIn;

    DocumentReader(TokenizeJob.Options o, Sink sink) {
        this.o = o;
        this.sink = sink;
    }

    /** Text or JSON lines: splits the stream into records by the format and feeds each to {@link #record}. */
    void read(InputStream in, String file) throws IOException {
        ByteArrayOutputStream rec = new ByteArrayOutputStream();
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        long pos = 0, lineStart = 0, recStart = 0;
        byte[] buf = new byte[1 << 16];
        int n;
        boolean separated = o.format().equals("text") && o.separator() != null;
        byte[] sep = separated ? o.separator().getBytes(StandardCharsets.UTF_8) : null;
        while ((n = in.read(buf)) > 0) {
            for (int i = 0; i < n; i++) {
                byte c = buf[i];
                pos++;
                if (c != '\n') {
                    line.write(c);
                    continue;
                }
                byte[] l = line.toByteArray();
                line.reset();
                if (separated) {
                    if (Arrays.equals(stripCr(l), sep)) {
                        record(rec.toByteArray(), file, recStart);
                        rec.reset();
                        recStart = pos;
                    } else {
                        rec.write(l);
                        rec.write('\n');
                    }
                } else {
                    record(l, file, lineStart);
                }
                lineStart = pos;
            }
        }
        if (line.size() > 0) {
            if (separated) {
                rec.write(line.toByteArray());
            } else {
                record(line.toByteArray(), file, lineStart);
            }
        }
        if (separated && rec.size() > 0) {
            record(rec.toByteArray(), file, recStart);
        }
        bytesIn = pos;
    }

    /** Parquet: one record per row; the string column {@code --field}; the offset is the row number. */
    void readParquet(Path in, Configuration conf, String file) throws IOException {
        bytesIn = in.getFileSystem(conf).getFileStatus(in).getLen();
        ParquetRecords.read(in, conf, o.field(), (text, bytes, row) -> {
            if (text == null) {
                bad(bytes == null ? "missing_field" : "invalid_utf8", file, row);
            } else {
                document(text, bytes.length, file, row);
            }
        });
    }

    private void record(byte[] bytes, String file, long offset) throws IOException {
        String text = decode(bytes);
        if (text == null) {
            bad("invalid_utf8", file, offset);
            return;
        }
        if (o.format().equals("jsonl")) {
            if (text.isBlank()) {
                return; // blank lines between JSON records are not records
            }
            JsonNode j;
            try {
                j = JSON.readTree(text);
            } catch (IOException e) {
                bad("malformed_json", file, offset);
                return;
            }
            JsonNode f = j == null ? null : j.get(o.field());
            if (f == null || !f.isTextual()) {
                bad("missing_field", file, offset);
                return;
            }
            text = f.asText();
        }
        document(text, bytes.length, file, offset);
    }

    private void document(String text, int byteLen, String file, long offset) throws IOException {
        if (text.isBlank()) {
            bad("empty", file, offset);
            return;
        }
        if (byteLen > o.maxDocBytes()) {
            bad("oversized", file, offset);
            return;
        }
        sink.document(text);
    }

    private void bad(String reason, String file, long offset) {
        bad.merge(reason, 1L, Long::sum);
        List<String> l = samples.computeIfAbsent(reason, k -> new ArrayList<>());
        if (l.size() < SAMPLES) {
            l.add(file + ":" + offset);
        }
    }

    private String decode(byte[] bytes) {
        try {
            return utf8.decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    private static byte[] stripCr(byte[] l) {
        return l.length > 0 && l[l.length - 1] == '\r' ? Arrays.copyOf(l, l.length - 1) : l;
    }
}
