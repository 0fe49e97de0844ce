package io.ouro.tokenizer.shard;

import io.ouro.tokenizer.fs.HadoopFiles;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Locale;
import java.util.function.Consumer;

/** Whole-corpus operations on a manifest's shards: verification, and rewriting into the current format. */
public final class Shards {

    private Shards() {
    }

    /**
     * Checks every shard whole: its size and SHA-256 against the manifest and, for the current format, every
     * record batch through the training reader (index entries, CRC32C, layout). Returns the shards that fail.
     */
    public static int verify(FileSystem fs, Path manifestPath, Manifest m, Consumer<String> log) throws IOException {
        ShardTable t = m.shards();
        Path dir = manifestPath.getParent();
        int bad = 0;
        try (ShardStream s = m.format().equals(ShardFormat.FORMAT)
                ? new ShardStream(manifestPath.toString(), m, new ShardStream.Positioned(fs, dir, m)) : null) {
            int[] buf = new int[1 << 20];
            for (int i = 0; i < t.size(); i++) {
                ShardTable.Entry e = t.get(i);
                Path p = new Path(dir, e.path());
                try {
                    long len = fs.getFileStatus(p).getLen();
                    if (len != e.bytes()) {
                        throw new ShardException(p + ": " + len + " bytes, the manifest says " + e.bytes());
                    }
                    MessageDigest md = ShardFormat.sha256();
                    try (InputStream in = fs.open(p)) {
                        byte[] b = new byte[1 << 20];
                        for (int n; (n = in.read(b)) > 0; ) {
                            md.update(b, 0, n);
                        }
                    }
                    String got = HexFormat.of().formatHex(md.digest());
                    if (!got.equals(e.sha256())) {
                        throw new ShardException(p + ": SHA-256 " + got + " does not match the manifest's " + e.sha256());
                    }
                    for (long at = 0; s != null && at < e.tokens(); at += buf.length) {
                        s.read(t.start(i) + at, buf, 0, (int) Math.min(buf.length, e.tokens() - at));
                    }
                } catch (IOException x) {
                    bad++;
                    log.accept("  FAILED " + x.getMessage());
                }
            }
        }
        log.accept(String.format(Locale.ROOT, "verify %s: %d of %d shards failed", manifestPath, bad, t.size()));
        return bad;
    }

    /**
     * Rewrites a manifest's shards (any format) into the current one under {@code out}: the same token
     * stream and documents, record batches of {@code batchTokens}, a new manifest. Each shard is written
     * under {@code _tmp/} and renamed into place; the manifest is written last.
     */
    public static Manifest rewrite(FileSystem fs, Path manifestPath, FileSystem outFs, Path out, int batchTokens,
                                   Consumer<String> log) throws IOException {
        Manifest m = Manifest.read(fs, manifestPath);
        ShardTable t = m.shards(), nt = new ShardTable();
        outFs.mkdirs(new Path(out, "_tmp"));
        for (int i = 0; i < t.size(); i++) {
            String name = t.path(i);
            Path src = new Path(manifestPath.getParent(), name), tmp = new Path(out, "_tmp/" + name);
            long key = ShardFormat.crcKey(m.source(), name, m.tokenizerSha256(), src.toUri().getPath());
            ShardWriter.Info[] written = new ShardWriter.Info[1];
            HadoopFiles.writeTemp(outFs, tmp, o -> {
                try (ShardWriter w = new ShardWriter(new java.io.BufferedOutputStream(o, 1 << 20), m.uint16(),
                        m.source(), m.tokenizerSha256(), m.eosId(), batchTokens, key)) {
                    int[][] doc = {new int[1 << 12]};
                    int[] len = {0};
                    ShardReader.forEachRow(fs, src, (ids, n, ends) -> {
                        if (len[0] + n > doc[0].length) {
                            doc[0] = java.util.Arrays.copyOf(doc[0], Math.max(doc[0].length * 2, len[0] + n));
                        }
                        System.arraycopy(ids, 0, doc[0], len[0], n);
                        len[0] += n;
                        if (ends) {
                            w.add(doc[0], len[0] - 1); // the writer appends the EOS again
                            len[0] = 0;
                        }
                    });
                    if (len[0] > 0) {
                        throw new ShardException(src + ": ends inside a document (no EOS after its last row)");
                    }
                    written[0] = w.finish();
                }
            });
            ShardWriter.Info info = written[0];
            if (info.tokens() != t.tokens(i)) {
                throw new ShardException(src + ": holds " + info.tokens() + " tokens, the manifest says " + t.tokens(i));
            }
            Path dst = new Path(out, name);
            outFs.delete(dst, false);
            HadoopFiles.rename(outFs, tmp, dst);
            nt.add(new ShardTable.Entry(name, info.documents(), info.tokens(), info.bytes(), info.sha256(),
                    info.indexOffset(), key));
            log.accept(String.format(Locale.ROOT, "reshard: %s (%,d tokens) -> %s", src, info.tokens(), dst));
        }
        Manifest n = new Manifest(ShardFormat.FORMAT, m.source(), m.input(), m.tokenizer(), m.tokenizerSha256(),
                m.vocabSize(), m.eosId(), m.tokenType(), batchTokens, nt, m.bytesIn(), m.badRecords(),
                m.badRecordSamples(), m.badRecordPolicy());
        Path mp = new Path(out, "manifest.json"), tmp = new Path(out, "_tmp/manifest.json");
        HadoopFiles.write(outFs, tmp, mp, true, n::write);
        return n;
    }
}
