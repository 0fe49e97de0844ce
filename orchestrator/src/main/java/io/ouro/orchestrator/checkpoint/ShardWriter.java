package io.ouro.orchestrator.checkpoint;

import io.ouro.tokenizer.fs.HadoopFiles;
import io.ouro.worker.model.TensorSource;
import io.ouro.worker.hf.Safetensors;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.worker.model.TensorView;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.BufferedOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32C;

/**
 * Writes one rank's shard of a checkpoint: its range of the flat index (see {@link FlatIndex}) of the
 * weights and both moments, as one safetensors file whose entries are named {@code <kind>/<tensor>@<start>}
 * (1-D, the elements {@code [start, start + n)} of that tensor), streamed a chunk at a time with a CRC32C
 * per {@link #BLOCK} bytes of the file. Then a small marker, {@code shard-r-of-W.json}, with the step, the
 * run state, the file's size and its block checksums. Both are written under temporary names and renamed,
 * so a marker means its shard is complete.
 */
public final class ShardWriter {

    /** Bytes per checksummed block: what a reader reads to verify any byte in it. */
    public static final int BLOCK = 8 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private ShardWriter() {
    }

    /** What every shard of one checkpoint records about the run besides the tensors. */
    public record RunState(long step, long optimizerStep, String configHash, Map<String, String> extra) {
    }

    /** Writes the shard of {@code rank} of {@code world} into {@code dir}; returns the shard's bytes. */
    public static long write(FileSystem fs, Path dir, FlatIndex index, int rank, int world,
                             Map<StateKind, TensorSource> state, RunState run) throws IOException {
        long[] range = index.range(rank, world);
        List<FlatIndex.Piece> pieces = index.pieces(range[0], range[1]);
        List<Safetensors.Entry> entries = new ArrayList<>();
        long pos = 0;
        for (StateKind k : StateKind.values()) {
            for (FlatIndex.Piece p : pieces) {
                entries.add(new Safetensors.Entry(pieceName(k, index.tensors().get(p.tensor()), p.start()),
                        new long[] {p.length()}, pos, pos + 4 * p.length()));
                pos += 4 * p.length();
            }
        }
        Map<String, String> meta = new TreeMap<>(Map.of("format", CheckpointStore.FORMAT, "step", Long.toString(run.step()),
                "rank", Integer.toString(rank), "world", Integer.toString(world),
                "range", range[0] + ":" + range[1]));
        String name = CheckpointStore.shardName(rank, world);
        Path tmp = new Path(dir, ".tmp-" + name), file = new Path(dir, name);
        BlockCrcStream[] written = new BlockCrcStream[1];
        HadoopFiles.write(fs, tmp, file, false, raw -> {
            try (BlockCrcStream c = new BlockCrcStream(new BufferedOutputStream(raw, 1 << 20), BLOCK)) {
                written[0] = c;
                c.write(Safetensors.header(entries, meta));
                Safetensors.Transfer x = new Safetensors.Transfer();
                for (StateKind k : StateKind.values()) {
                    TensorSource src = state.get(k);
                    for (FlatIndex.Piece p : pieces) {
                        x.copyOut(src, index.tensors().get(p.tensor()), p.start(), p.length(), c);
                    }
                }
            }
        });
        BlockCrcStream crc = written[0];

        ObjectNode m = JSON.createObjectNode();
        m.put("format", CheckpointStore.FORMAT);
        m.put("step", run.step());
        m.put("optimizer_step", run.optimizerStep());
        m.put("config_hash", run.configHash());
        m.put("rank", rank);
        m.put("world", world);
        m.putArray("range").add(range[0]).add(range[1]);
        m.put("file", name);
        m.put("bytes", crc.count);
        m.put("block_bytes", BLOCK);
        ArrayNode sums = m.putArray("crc32c");
        crc.sums().forEach(sums::add);
        new TreeMap<>(run.extra()).forEach(m.putObject("extra")::put);
        ArrayNode tensors = m.putArray("tensors");
        for (TensorView t : index.tensors()) {
            ArrayNode shape = tensors.addObject().put("name", t.name()).put("kind", t.kind().name()).putArray("shape");
            for (int s : t.shape()) {
                shape.add(s);
            }
        }
        Path marker = new Path(dir, CheckpointStore.markerName(rank, world));
        HadoopFiles.write(fs, new Path(dir, ".tmp-" + marker.getName()), marker,
                JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(m));
        return crc.count;
    }

    static String pieceName(StateKind k, TensorView t, long start) {
        return k.label + "/" + t.name() + "@" + start;
    }

    /** Counts the bytes written and keeps a CRC32C of every {@code block} bytes. */
    static final class BlockCrcStream extends FilterOutputStream {
        private final int block;
        private final List<Long> sums = new ArrayList<>();
        private final CRC32C crc = new CRC32C();
        private long count;
        private int inBlock;

        BlockCrcStream(OutputStream out, int block) {
            super(out);
            this.block = block;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            while (len > 0) {
                int n = Math.min(len, block - inBlock);
                crc.update(b, off, n);
                inBlock += n;
                count += n;
                off += n;
                len -= n;
                if (inBlock == block) {
                    sums.add(crc.getValue());
                    crc.reset();
                    inBlock = 0;
                }
            }
        }

        List<Long> sums() {
            List<Long> all = new ArrayList<>(sums);
            if (inBlock > 0) {
                all.add(crc.getValue());
            }
            return all;
        }
    }
}
