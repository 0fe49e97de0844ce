package io.ouro.tokenizer.job;

import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.tokenizer.IntList;
import io.ouro.tokenizer.fs.HadoopFiles;
import io.ouro.tokenizer.shard.ShardFormat;
import io.ouro.tokenizer.shard.ShardWriter;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Tokenizes one unit's documents and packs them into shards {@code <prefix>NNNN.arrow} of about
 * {@code --shard-tokens} tokens: each shard is written under {@code _tmp/} and renamed into place when
 * complete, so no half-written shard is ever visible.
 */
final class ShardPacker implements DocumentReader.Sink {

    private final TokenizeJob.Options o;
    private final int unit;
    private final BpeTokenizer tok;
    private final FileSystem fs;
    private final Path out;
    private final String prefix;
    private final String inputPath;
    private final boolean uint16;
    private final IntList ids = new IntList(1 << 16);
    final List<UnitResult.ShardInfo> shards = new ArrayList<>();
    long docs, tokens;
    private ShardWriter writer;
    private Path tmp;
    private String shardName;
    private long crcKey;

    ShardPacker(TokenizeJob.Options o, int unit, BpeTokenizer tok, FileSystem fs, Path out, String prefix,
                String inputPath) {
        this.o = o;
        this.unit = unit;
        this.tok = tok;
        this.fs = fs;
        this.out = out;
        this.prefix = prefix;
        this.inputPath = inputPath;
        this.uint16 = tok.vocabSize() <= 65536;
    }

    @Override
    public void document(String text) throws IOException {
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

    /** Commits the open shard, if any. */
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

    private void startShard() throws IOException {
        shardName = prefix + String.format("%04d.arrow", shards.size());
        tmp = new Path(out, "_tmp/" + shardName + "." + Long.toHexString(System.nanoTime()));
        crcKey = ShardFormat.crcKey(o.source(), shardName, tok.fingerprint(), inputPath);
        writer = new ShardWriter(new BufferedOutputStream(fs.create(tmp, true), 1 << 20), uint16,
                o.source(), tok.fingerprint(), tok.eosId(), o.batchTokens(), crcKey);
    }
}
