package io.ouro.tokenizer.job;

import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.tokenizer.cli.Args;
import io.ouro.tokenizer.job.ManifestCommit.Totals;
import io.ouro.tokenizer.shard.ShardFormat;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.util.LongAccumulator;

import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

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
 *
 * <p>This class is the driver's flow; a unit runs in {@link TokenizeUnit} ({@link DocumentReader} into
 * {@link ShardPacker}) and the manifest is {@link ManifestCommit}'s.
 */
public final class TokenizeJob {

    public static final String[] REASONS = {"invalid_utf8", "malformed_json", "missing_field", "empty", "oversized"};

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

    public static Summary run(JavaSparkContext jsc, Options o, Consumer<String> log)
            throws IOException {
        long t0 = System.nanoTime();
        if (!List.of("text", "jsonl", "parquet").contains(o.format())) {
            throw new IllegalArgumentException("--format: expected text, jsonl or parquet, got " + o.format());
        }
        Configuration hconf = jsc.hadoopConfiguration();
        byte[] tokJson = JobFiles.readAll(new Path(o.tokenizer()), hconf);
        BpeTokenizer tok = BpeTokenizer.fromJson(tokJson, o.tokenizer());
        Path in = new Path(o.input());
        FileSystem inFs = in.getFileSystem(hconf);
        List<String> files = new ArrayList<>();
        JobFiles.list(inFs, in, files);
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
        Thread progress = TokenizeProgress.start(jsc, files.size(), docs, toks, bytes, t0, log);
        List<UnitResult> results;
        try {
            results = jsc.parallelize(units, Math.max(1, units.size())).map(u -> {
                BpeTokenizer t = TokenizerCache.tokenizer(bc.value());
                UnitResult r = TokenizeUnit.run(o, u, files.get(u), t);
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
        Totals m = ManifestCommit.write(out.getFileSystem(hconf), out, o, tok, results);
        double sec = (System.nanoTime() - t0) / 1e9;
        Summary s = new Summary(m.documents(), m.tokens(), m.bytesIn(), m.shards(), results.size(), m.skippedUnits(),
                m.bad(), sec, m.manifest().toString());
        log.accept(String.format(Locale.ROOT, "tokenize %s: %,d documents, %,d tokens, %.1f MB in %.1f s (%.2f MB/s,"
                        + " %,.0f tokens/s); %d shards from %d unit(s) (%d already done); bad records %s; manifest %s",
                o.source(), m.documents(), m.tokens(), m.bytesIn() / 1e6, sec, m.bytesIn() / 1e6 / sec,
                m.tokens() / sec, m.shards(), results.size(), m.skippedUnits(), m.bad(), m.manifest()));
        for (var e : m.samples().entrySet()) {
            log.accept("  " + e.getKey() + " e.g. at " + e.getValue());
        }
        return s;
    }
}
