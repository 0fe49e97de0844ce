package io.ouro.tokenizer.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.tokenizer.BpeTokenizer;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One unit of work, run in a Spark task: one input file into shards ({@link DocumentReader} into
 * {@link ShardPacker}), then the marker {@code _units/uNNNNN.json} that commits the unit. A unit with a
 * marker is done and is read back from it; a unit without one starts over, deleting any shards an earlier
 * attempt committed.
 */
final class TokenizeUnit {

    private static final ObjectMapper JSON = new ObjectMapper();

    private TokenizeUnit() {
    }

    static UnitResult run(TokenizeJob.Options o, int unit, String file, BpeTokenizer tok) throws IOException {
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
        ShardPacker packer = new ShardPacker(o, unit, tok, fs, out, prefix, new Path(file).toUri().getPath());
        DocumentReader reader = new DocumentReader(o, packer);
        Path in = new Path(file);
        FileSystem inFs = in.getFileSystem(conf);
        if (o.format().equals("parquet")) {
            reader.readParquet(in, conf, file);
        } else {
            try (FSDataInputStream stream = inFs.open(in)) {
                reader.read(stream, file);
            }
        }
        packer.finishShard();
        UnitResult r = new UnitResult(unit, file, packer.shards, packer.docs, packer.tokens, reader.bytesIn,
                reader.bad, reader.samples, false);
        JobFiles.writeAtomically(fs, marker, JSON.writeValueAsBytes(toMarker(r)));
        return r;
    }

    private static ObjectNode toMarker(UnitResult r) {
        ObjectNode m = JSON.createObjectNode();
        m.put("unit", r.unit());
        m.put("input", r.input());
        m.put("documents", r.documents());
        m.put("tokens", r.tokens());
        m.put("bytes_in", r.bytesIn());
        ArrayNode sh = m.putArray("shards");
        for (UnitResult.ShardInfo s : r.shards()) {
            sh.add(JSON.valueToTree(s));
        }
        m.set("bad", JSON.valueToTree(r.bad()));
        m.set("samples", JSON.valueToTree(r.samples()));
        return m;
    }

    private static UnitResult fromMarker(FileSystem fs, Path marker, int unit, String file) throws IOException {
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
}
