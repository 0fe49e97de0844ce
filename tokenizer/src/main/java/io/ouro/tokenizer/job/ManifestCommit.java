package io.ouro.tokenizer.job;

import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.tokenizer.shard.Manifest;
import io.ouro.tokenizer.shard.ShardFormat;
import io.ouro.tokenizer.shard.ShardTable;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The job's last step, on the driver: the units' results, in unit order, into {@code manifest.json}, written
 * by rename so that a reader sees the whole manifest or none.
 */
final class ManifestCommit {

    /** The totals over all units, and where the manifest went. */
    record Totals(long documents, long tokens, long bytesIn, int shards, int skippedUnits, Map<String, Long> bad,
                  Map<String, List<String>> samples, Path manifest) {
    }

    private ManifestCommit() {
    }

    static Totals write(FileSystem fs, Path out, TokenizeJob.Options o, BpeTokenizer tok, List<UnitResult> results)
            throws IOException {
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
        for (String r : TokenizeJob.REASONS) {
            badAll.put(r, bad.getOrDefault(r, 0L));
        }
        Manifest m = new Manifest(ShardFormat.FORMAT, o.source(), o.input(), o.tokenizer(), tok.fingerprint(),
                tok.vocabSize(), tok.eosId(), tok.vocabSize() <= 65536 ? "uint16" : "int32", o.batchTokens(), shards, b,
                badAll, samples, "skipped and counted: invalid UTF-8, malformed JSON, missing or non-string field,"
                + " empty (no non-whitespace character), over " + o.maxDocBytes() + " bytes");
        Path manifest = new Path(out, "manifest.json");
        JobFiles.writeAtomically(fs, manifest, m.toJson());
        return new Totals(d, t, b, shards.size(), skipped, bad, samples, manifest);
    }
}
