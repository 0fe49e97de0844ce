package io.ouro.tokenizer.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ouro.tokenizer.BpeTokenizer;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.InputStream;
import java.util.Arrays;
import java.util.Locale;

/**
 * {@code ouro inspect --manifest URI [--tokenizer FILE] [--docs N]}: the manifest's summary, and the
 * first documents of the first shard decoded (with the tokenizer the manifest names, or the one given).
 */
public final class InspectApp {

    private InspectApp() {
    }

    public static void main(String[] args) throws Exception {
        var a = TokenizeJob.parse(args);
        String manifest = TokenizeJob.req(a, "manifest");
        int docs = Integer.parseInt(a.getOrDefault("docs", "3"));
        Configuration conf = new Configuration();
        Path mp = new Path(manifest);
        FileSystem fs = mp.getFileSystem(conf);
        JsonNode m;
        try (InputStream in = fs.open(mp)) {
            m = new ObjectMapper().readTree(in);
        }
        JsonNode t = m.path("totals");
        System.out.printf(Locale.ROOT, "manifest %s%n  source %s, format %s, from %s%n  tokenizer %s (sha256 %s), vocab %d,"
                        + " eos %d, tokens stored as %s%n  %,d documents, %,d tokens, %,d bytes in, %d shards%n  bad records %s%n",
                manifest, m.path("source").asText(), m.path("format").asText(), m.path("input").asText(),
                m.path("tokenizer").asText(), m.path("tokenizer_sha256").asText().substring(0, 12), m.path("vocab_size").asInt(),
                m.path("eos_id").asInt(), m.path("token_type").asText(), t.path("documents").asLong(), t.path("tokens").asLong(),
                t.path("bytes_in").asLong(), t.path("shards").asInt(), m.path("bad_records"));
        int shown = 0;
        for (JsonNode s : m.path("shards")) {
            if (shown++ < 5) {
                System.out.printf(Locale.ROOT, "  shard %s: %,d documents, %,d tokens, %,d bytes%n", s.path("path").asText(),
                        s.path("documents").asLong(), s.path("tokens").asLong(), s.path("bytes").asLong());
            }
        }
        if (m.path("shards").isEmpty()) {
            return;
        }
        Path first = new Path(mp.getParent(), m.path("shards").get(0).path("path").asText());
        Shards.Content c = Shards.read(fs, first);
        String tokPath = a.getOrDefault("tokenizer", m.path("tokenizer").asText());
        byte[] tokJson;
        try (InputStream in = new Path(tokPath).getFileSystem(conf).open(new Path(tokPath))) {
            tokJson = in.readAllBytes();
        }
        BpeTokenizer tok = BpeTokenizer.fromJson(tokJson, tokPath);
        if (!tok.fingerprint().equals(m.path("tokenizer_sha256").asText())) {
            System.out.println("  warning: " + tokPath + " is not the tokenizer these shards were made with");
        }
        for (int d = 0; d < Math.min(docs, c.docStarts().length); d++) {
            int s = (int) c.docStarts()[d];
            int e = d + 1 < c.docStarts().length ? (int) c.docStarts()[d + 1] : c.tokens().length;
            int[] ids = Arrays.copyOfRange(c.tokens(), s, e);
            String text = tok.decode(Arrays.copyOf(ids, ids.length - 1));
            System.out.printf(Locale.ROOT, "  document %d of %s (%d tokens): %s%n", d, first.getName(), ids.length,
                    (text.length() > 200 ? text.substring(0, 200) + "…" : text).replace("\n", "⏎"));
        }
    }
}
