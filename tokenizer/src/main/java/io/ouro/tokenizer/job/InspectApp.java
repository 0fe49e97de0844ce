package io.ouro.tokenizer.job;

import io.ouro.tokenizer.cli.Args;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.tokenizer.shard.Manifest;
import io.ouro.tokenizer.shard.ShardFormat;
import io.ouro.tokenizer.shard.ShardStream;
import io.ouro.tokenizer.shard.ShardTable;
import io.ouro.tokenizer.shard.Shards;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.Locale;

/**
 * {@code ouro inspect --manifest URI [--tokenizer FILE] [--docs N] [--verify]}: the manifest's summary and
 * the first documents of the stream decoded (with the tokenizer the manifest names, or the one given).
 * {@code --verify} checks every shard whole: its size and SHA-256 against the manifest, and every record
 * batch through the training reader (index and CRC32C); it exits 1 naming each shard that fails.
 */
public final class InspectApp {

    private InspectApp() {
    }

    static final String USAGE = "ouro inspect --manifest URI [--tokenizer FILE] [--docs N] [--verify]";

    public static void main(String[] args) throws Exception {
        Args a = Args.orExit(args, USAGE);
        boolean verify = a.has("verify");
        String manifest = a.required("manifest");
        int docs = a.integer("docs", 3);
        Configuration conf = new Configuration();
        Path mp = new Path(manifest);
        FileSystem fs = mp.getFileSystem(conf);
        Manifest m = Manifest.read(fs, mp);
        ShardTable t = m.shards();
        System.out.printf(Locale.ROOT, "manifest %s%n  source %s, format %s, from %s%n  tokenizer %s (sha256 %s), vocab %d,"
                        + " eos %d, tokens stored as %s in record batches of %d%n  %,d documents, %,d tokens, %,d bytes in,"
                        + " %d shards%n  bad records %s%n",
                manifest, m.source(), m.format(), m.input(), m.tokenizer(), m.tokenizerSha256().substring(0, 12),
                m.vocabSize(), m.eosId(), m.tokenType(), m.batchTokens(), t.totalDocuments(), t.totalTokens(), m.bytesIn(),
                t.size(), m.badRecords());
        for (int i = 0; i < Math.min(5, t.size()); i++) {
            ShardTable.Entry e = t.get(i);
            System.out.printf(Locale.ROOT, "  shard %s: %,d documents, %,d tokens, %,d bytes%n", e.path(), e.documents(),
                    e.tokens(), e.bytes());
        }
        if (verify) {
            System.exit(Shards.verify(fs, mp, m, System.out::println) == 0 ? 0 : 1);
        }
        if (!m.format().equals(ShardFormat.FORMAT)) {
            System.out.println("  these shards are " + m.format() + ", which training no longer reads; rewrite them with:"
                    + " ouro reshard --manifest " + manifest + " --output <new directory>");
            return;
        }
        if (t.size() == 0 || t.totalTokens() == 0) {
            return;
        }
        String tokPath = a.get("tokenizer", m.tokenizer());
        byte[] tokJson;
        try (InputStream in = new Path(tokPath).getFileSystem(conf).open(new Path(tokPath))) {
            tokJson = in.readAllBytes();
        }
        BpeTokenizer tok = BpeTokenizer.fromJson(tokJson, tokPath);
        if (!tok.fingerprint().equals(m.tokenizerSha256())) {
            System.out.println("  warning: " + tokPath + " is not the tokenizer these shards were made with");
        }
        printDocuments(fs, mp, m, tok, docs);
    }

    private static void printDocuments(FileSystem fs, Path mp, Manifest m, BpeTokenizer tok, int docs)
            throws IOException {
        int[] head = new int[(int) Math.min(1 << 16, m.tokens())];
        try (ShardStream s = ShardStream.open(fs, mp)) {
            s.read(0, head, 0, head.length);
        }
        int start = 0, d = 0;
        for (int i = 0; i < head.length && d < docs; i++) {
            if (head[i] == m.eosId()) {
                String text = tok.decode(Arrays.copyOfRange(head, start, i));
                System.out.printf(Locale.ROOT, "  document %d (%d tokens): %s%n", d++, i + 1 - start,
                        (text.length() > 200 ? text.substring(0, 200) + "…" : text).replace("\n", "⏎"));
                start = i + 1;
            }
        }
    }
}
