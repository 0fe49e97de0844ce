package io.ouro.tokenizer.job;

import io.ouro.tokenizer.cli.Args;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.tokenizer.IntList;
import io.ouro.tokenizer.fs.HadoopFiles;
import io.ouro.tokenizer.shard.Manifest;
import io.ouro.tokenizer.shard.ShardFormat;
import io.ouro.tokenizer.shard.ShardTable;
import io.ouro.tokenizer.shard.ShardWriter;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.util.LongAccumulator;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The tokenization job: raw text on any Hadoop FileSystem in, Arrow token shards ({@link Shards}) and a
 * {@code manifest.json} out.
 *
 * <p>Units of work are the input files, sorted by path, one Spark task each, so the output depends only
 * on the input: the same input gives byte-identical shards. A unit writes its shards under
 * {@code _tmp/} and renames each into place when complete, then commits a marker {@code _units/uNNNNN.json};
 * a re-run skips units with a marker and rewrites the others from the start, so a killed job leaves no
 * half-written shard visible and resumes where it stopped. The manifest is written last, also by rename.
 *
 * <p>Bad records are data: invalid UTF-8, malformed JSON lines, a missing or non-string field, empty
 * documents and documents over {@code --max-doc-bytes} are skipped, counted per reason (Spark accumulators
 * {@code tokenize bad <reason>}, the summary, the manifest) with up to 5 sample locations
 * ({@code file:byte offset}) per reason and unit. The job completes.
 */
public final class TokenizeJob {

    public static final String[] REASONS = {"invalid_utf8", "malformed_json", "missing_field", "empty", "oversized"};
    static final ObjectMapper JSON = new ObjectMapper();

    /** The job's settings. */
    public record Options(String input, String format, String field, String separator, String tokenizer,
                          String output, String source, long shardTokens, int maxDocBytes, int injectFailureAtUnit,
                          int batchTokens)
            implements Serializable {

        /** With record batches of {@link ShardFormat#DEFAULT_BATCH_TOKENS} tokens. */
        public Options(String input, String format, String field, String separator, String tokenizer, String output,
                       String source, long shardTokens, int maxDocBytes, int injectFailureAtUnit) {
            this(input, format, field, separator, tokenizer, output, source, shardTokens, maxDocBytes,
                    injectFailureAtUnit, ShardFormat.DEFAULT_BATCH_TOKENS);
        }
    }

    /** What the job did, as the summary prints it. */
    public record Summary(long documents, long tokens, long bytesIn, int shards, int units, int skippedUnits,
                          Map<String, Long> bad, double seconds, String manifest) {
    }

    static final String USAGE = "tokenize --input URI --format text|jsonl|parquet [--field text] [--separator LINE]"
            + " --tokenizer FILE --output URI --source NAME [--master URL] [--shard-tokens N] [--batch-tokens N]"
            + " [--max-doc-bytes N]";

    public static void main(String[] args) throws Exception {
        Args a = Args.orExit(args, USAGE);
        Options o = new Options(a.required("input"), a.get("format", "text"), a.get("field", "text"),
                a.get("separator", null), a.required("tokenizer"), a.required("output"), a.required("source"),
                a.longValue("shard-tokens", 16777216L), a.integer("max-doc-bytes", 16777216), -1,
                a.integer("batch-tokens", ShardFormat.DEFAULT_BATCH_TOKENS));
        SparkConf conf = new SparkConf().setAppName("ouro tokenize · " + o.source());
        if (a.has("master")) {
            conf.setMaster(a.get("master", null));
        } else if (!conf.contains("spark.master")) {
            conf.setMaster("local[*]");
        }
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            Summary s = run(jsc, o, System.out::println);
            System.exit(s.documents() > 0 || s.units() > 0 ? 0 : 1);
        }
    }

    public static Summary run(JavaSparkContext jsc, Options o, java.util.function.Consumer<String> log)
            throws IOException {
        long t0 = System.nanoTime();
        if (!List.of("text", "jsonl", "parquet").contains(o.format())) {
            throw new IllegalArgumentException("--format: expected text, jsonl or parquet, got " + o.format());
        }
        Configuration hconf = jsc.hadoopConfiguration();
        byte[] tokJson = readAll(new Path(o.tokenizer()), hconf);
        BpeTokenizer tok = BpeTokenizer.fromJson(tokJson, o.tokenizer());
        Path in = new Path(o.input());
        FileSystem inFs = in.getFileSystem(hconf);
        List<String> files = new ArrayList<>();
        list(inFs, in, files);
        files.sort(null);
        if (files.isEmpty()) {
            throw new IOException(o.input() + ": no input files");
        }
        Path out = new Path(o.output());
        out.getFileSystem(hconf).mkdirs(out);
        Map<String, LongAccumulator> acc = new LinkedHashMap<>();
        for (String r : REASONS) {
            acc.put(r, jsc.sc().longAccumulator("tokenize bad " + r));
        }
        LongAccumulator docs = jsc.sc().longAccumulator("tokenize documents");
        LongAccumulator toks = jsc.sc().longAccumulator("tokenize tokens");
        LongAccumulator bytes = jsc.sc().longAccumulator("tokenize bytes in");
        var bc = jsc.broadcast(tokJson);
        List<Integer> units = new ArrayList<>();
        for (int i = 0; i < files.size(); i++) {
            units.add(i);
        }
        jsc.setJobGroup("ouro-tokenize-" + o.source(), "tokenize " + o.source() + " · " + files.size() + " file(s) from "
                + o.input(), false);
        Thread progress = progress(jsc, files.size(), docs, toks, bytes, t0, log);
        List<UnitResult> results;
        try {
            results = jsc.parallelize(units, Math.max(1, units.size())).map(u -> {
                BpeTokenizer t = Cache.tokenizer(bc.value());
                UnitResult r = Unit.run(o, u, files.get(u), t);
                docs.add(r.documents());
                toks.add(r.tokens());
                bytes.add(r.bytesIn());
                r.bad().forEach((k, v) -> acc.get(k).add(v));
                return r;
            }).collect();
        } finally {
            progress.interrupt();
            jsc.clearJobGroup();
        }
        // the manifest, in unit order
        ShardTable shards = new ShardTable();
        long d = 0, t = 0, b = 0;
        int skipped = 0;
        Map<String, Long> bad = new TreeMap<>();
        Map<String, List<String>> samples = new TreeMap<>();
        for (UnitResult r : results) {
            for (UnitResult.ShardInfo s : r.shards()) {
                shards.add(new ShardTable.Entry(s.path(), s.documents(), s.tokens(), s.bytes(), s.sha256(),
                        s.indexOffset(), s.crcKey()));
            }
            d += r.documents();
            t += r.tokens();
            b += r.bytesIn();
            skipped += r.skipped() ? 1 : 0;
            r.bad().forEach((k, v) -> bad.merge(k, v, Long::sum));
            r.samples().forEach((k, v) -> samples.computeIfAbsent(k, x -> new ArrayList<>()).addAll(v));
        }
        Map<String, Long> badAll = new LinkedHashMap<>();
        for (String r : REASONS) {
            badAll.put(r, bad.getOrDefault(r, 0L));
        }
        Manifest m = new Manifest(ShardFormat.FORMAT, o.source(), o.input(), o.tokenizer(), tok.fingerprint(),
                tok.vocabSize(), tok.eosId(), tok.vocabSize() <= 65536 ? "uint16" : "int32", o.batchTokens(), shards, b,
                badAll, samples, "skipped and counted: invalid UTF-8, malformed JSON, missing or non-string field,"
                + " empty (no non-whitespace character), over " + o.maxDocBytes() + " bytes");
        Path manifest = new Path(out, "manifest.json");
        writeAtomically(out.getFileSystem(hconf), manifest, m.toJson());
        double sec = (System.nanoTime() - t0) / 1e9;
        Summary s = new Summary(d, t, b, shards.size(), results.size(), skipped, bad, sec, manifest.toString());
        log.accept(String.format(Locale.ROOT, "tokenize %s: %,d documents, %,d tokens, %.1f MB in %.1f s (%.2f MB/s,"
                        + " %,.0f tokens/s); %d shards from %d unit(s) (%d already done); bad records %s; manifest %s",
                o.source(), d, t, b / 1e6, sec, b / 1e6 / sec, t / sec, shards.size(), results.size(), skipped, bad,
                manifest));
        for (var e : samples.entrySet()) {
            log.accept("  " + e.getKey() + " e.g. at " + e.getValue());
        }
        return s;
    }

    static Thread progress(JavaSparkContext jsc, int units, LongAccumulator docs, LongAccumulator toks,
                           LongAccumulator bytes, long t0, java.util.function.Consumer<String> log) {
        Thread th = new Thread(() -> {
            try {
                while (true) {
                    Thread.sleep(2000);
                    int done = 0;
                    for (int id : jsc.statusTracker().getActiveStageIds()) {
                        var st = jsc.statusTracker().getStageInfo(id);
                        if (st != null) {
                            done += st.numCompletedTasks();
                        }
                    }
                    double sec = (System.nanoTime() - t0) / 1e9;
                    log.accept(String.format(Locale.ROOT, "tokenize: %d/%d files done, %,d documents, %,d tokens,"
                                    + " %.2f MB/s", done, units, docs.value(), toks.value(), bytes.value() / 1e6 / sec));
                }
            } catch (InterruptedException e) {
                // done
            }
        }, "tokenize-progress");
        th.setDaemon(true);
        th.start();
        return th;
    }

    static void list(FileSystem fs, Path p, List<String> out) throws IOException {
        FileStatus st = fs.getFileStatus(p);
        if (st.isFile()) {
            out.add(st.getPath().toString());
            return;
        }
        for (FileStatus c : fs.listStatus(p)) {
            String n = c.getPath().getName();
            if (n.startsWith("_") || n.startsWith(".")) {
                continue;
            }
            if (c.isDirectory()) {
                list(fs, c.getPath(), out);
            } else {
                out.add(c.getPath().toString());
            }
        }
    }

    static byte[] readAll(Path p, Configuration conf) throws IOException {
        try (InputStream in = p.getFileSystem(conf).open(p)) {
            return in.readAllBytes();
        }
    }

    static void writeAtomically(FileSystem fs, Path dst, byte[] content) throws IOException {
        Path tmp = new Path(dst.getParent(), "_tmp/" + dst.getName() + "." + Long.toHexString(System.nanoTime()));
        HadoopFiles.writeTemp(fs, tmp, out -> out.write(content));
        if (fs.exists(dst)) {
            fs.delete(dst, false);
        }
        HadoopFiles.commit(fs, tmp, dst);
    }

    /** One tokenizer per executor JVM, built from the broadcast file. */
    static final class Cache {
        private static byte[] key;
        private static BpeTokenizer tok;

        static synchronized BpeTokenizer tokenizer(byte[] json) {
            if (tok == null || !java.util.Arrays.equals(key, json)) {
                tok = BpeTokenizer.fromJson(json, "broadcast tokenizer.json");
                key = json;
            }
            return tok;
        }
    }

    /** One unit of work: one input file into shards, with its bad-record accounting. */
    static final class Unit {

        static UnitResult run(Options o, int unit, String file, BpeTokenizer tok) throws IOException {
            Configuration conf = new Configuration();
            Path out = new Path(o.output());
            FileSystem fs = out.getFileSystem(conf);
            Path marker = new Path(out, String.format("_units/u%05d.json", unit));
            String prefix = String.format("%s-u%05d-", o.source(), unit);
            if (fs.exists(marker)) {
                return fromMarker(fs, marker, unit, file);
            }
            // an earlier attempt may have committed some shards of this unit before it died: start over
            for (FileStatus s : fs.listStatus(out)) {
                if (s.getPath().getName().startsWith(prefix)) {
                    fs.delete(s.getPath(), false);
                }
            }
            Unit u = new Unit(o, unit, tok, fs, out, prefix, new Path(file).toUri().getPath());
            Path in = new Path(file);
            FileSystem inFs = in.getFileSystem(conf);
            if (o.format().equals("parquet")) {
                u.readParquet(in, conf, file);
            } else {
                try (FSDataInputStream stream = inFs.open(in)) {
                    u.read(stream, file);
                }
            }
            u.finishShard();
            ObjectNode m = JSON.createObjectNode();
            m.put("unit", unit);
            m.put("input", file);
            m.put("documents", u.docs);
            m.put("tokens", u.tokens);
            m.put("bytes_in", u.bytesIn);
            ArrayNode sh = m.putArray("shards");
            for (UnitResult.ShardInfo s : u.shards) {
                sh.add(JSON.valueToTree(s));
            }
            m.set("bad", JSON.valueToTree(u.bad));
            m.set("samples", JSON.valueToTree(u.samples));
            writeAtomically(fs, marker, JSON.writeValueAsBytes(m));
            return new UnitResult(unit, file, u.shards, u.docs, u.tokens, u.bytesIn, u.bad, u.samples, false);
        }

        static UnitResult fromMarker(FileSystem fs, Path marker, int unit, String file) throws IOException {
            JsonNode m;
            try (InputStream in = fs.open(marker)) {
                m = JSON.readTree(in);
            }
            List<UnitResult.ShardInfo> shards = new ArrayList<>();
            for (JsonNode s : m.path("shards")) {
                shards.add(JSON.treeToValue(s, UnitResult.ShardInfo.class));
            }
            Map<String, Long> bad = new TreeMap<>();
            m.path("bad").properties().forEach(e -> bad.put(e.getKey(), e.getValue().asLong()));
            Map<String, List<String>> samples = new TreeMap<>();
            m.path("samples").properties().forEach(e -> {
                List<String> l = new ArrayList<>();
                e.getValue().forEach(x -> l.add(x.asText()));
                samples.put(e.getKey(), l);
            });
            return new UnitResult(unit, file, shards, m.path("documents").asLong(), m.path("tokens").asLong(),
                    m.path("bytes_in").asLong(), bad, samples, true);
        }

        final Options o;
        final int unit;
        final BpeTokenizer tok;
        final FileSystem fs;
        final Path out;
        final String prefix;
        final String inputPath;
        final boolean uint16;
        final List<UnitResult.ShardInfo> shards = new ArrayList<>();
        final Map<String, Long> bad = new TreeMap<>();
        final Map<String, List<String>> samples = new TreeMap<>();
        final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        final IntList ids = new IntList(1 << 16);
        long docs, tokens, bytesIn;
        ShardWriter writer;
        Path tmp;
        String shardName;
        long crcKey;

        Unit(Options o, int unit, BpeTokenizer tok, FileSystem fs, Path out, String prefix, String inputPath) {
            this.inputPath = inputPath;
            this.o = o;
            this.unit = unit;
            this.tok = tok;
            this.fs = fs;
            this.out = out;
            this.prefix = prefix;
            this.uint16 = tok.vocabSize() <= 65536;
        }

        void bad(String reason, String file, long offset) {
            bad.merge(reason, 1L, Long::sum);
            List<String> l = samples.computeIfAbsent(reason, k -> new ArrayList<>());
            if (l.size() < 5) {
                l.add(file + ":" + offset);
            }
        }

        /** Splits the stream into records by the format and feeds each to {@link #document}. */
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
                        if (java.util.Arrays.equals(stripCr(l), sep)) {
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

        String decode(byte[] bytes) {
            try {
                return utf8.decode(ByteBuffer.wrap(bytes)).toString();
            } catch (CharacterCodingException e) {
                return null;
            }
        }

        static byte[] stripCr(byte[] l) {
            return l.length > 0 && l[l.length - 1] == '\r' ? java.util.Arrays.copyOf(l, l.length - 1) : l;
        }

        void record(byte[] bytes, String file, long offset) throws IOException {
            String text;
            text = decode(bytes);
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

        void document(String text, int byteLen, String file, long offset) throws IOException {
            if (text.isBlank()) {
                bad("empty", file, offset);
                return;
            }
            if (byteLen > o.maxDocBytes()) {
                bad("oversized", file, offset);
                return;
            }
            ids.clear();
            tok.encodeTo(text, ids);
            if (writer == null) {
                startShard();
            }
            writer.add(ids.toArray(), ids.size());
            docs++;
            tokens += ids.size() + 1;
            if (o.injectFailureAtUnit() == unit && shards.size() == 1) {
                throw new IOException("injected failure in unit " + unit + " (test)");
            }
            if (writer.tokens() >= o.shardTokens()) {
                finishShard();
            }
        }

        void startShard() throws IOException {
            shardName = prefix + String.format("%04d.arrow", shards.size());
            tmp = new Path(out, "_tmp/" + shardName + "." + Long.toHexString(System.nanoTime()));
            crcKey = ShardFormat.crcKey(o.source(), shardName, tok.fingerprint(), inputPath);
            writer = new ShardWriter(new java.io.BufferedOutputStream(fs.create(tmp, true), 1 << 20), uint16,
                    o.source(), tok.fingerprint(), tok.eosId(), o.batchTokens(), crcKey);
        }

        void finishShard() throws IOException {
            if (writer == null) {
                return;
            }
            ShardWriter.Info w = writer.finish();
            Path dst = new Path(out, shardName);
            HadoopFiles.commit(fs, tmp, dst);
            shards.add(new UnitResult.ShardInfo(shardName, w.documents(), w.tokens(), w.bytes(), w.sha256(),
                    w.indexOffset(), crcKey));
            writer = null;
        }
    }
}
