package io.ouro.orchestrator.checkpoint;

import io.ouro.worker.model.TensorSink;
import io.ouro.worker.model.TensorSource;
import io.ouro.worker.hf.Safetensors;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ouro.worker.model.TensorKind;
import io.ouro.worker.model.TensorView;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32C;

/**
 * Reads one committed checkpoint, whatever number of ranks wrote it: any range of any tensor of the
 * weights or a moment is found in the shards that hold it and read with positioned reads, each block of
 * {@link ShardWriter#BLOCK} bytes verified against its CRC32C before use. Nothing is read whole, so
 * shards may have any size; a reader with another W takes whatever ranges it needs (resharding).
 */
public final class CheckpointReader implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final JsonNode meta;
    private final FlatIndex index;
    private final Map<String, Integer> tensorIndex = new HashMap<>();
    private final Shard[] shards;
    private Shard current;

    CheckpointReader(FileSystem fs, Path dir, JsonNode meta) throws IOException {
        this.dir = dir;
        this.meta = meta;
        List<TensorView> tensors = new ArrayList<>();
        long offset = 0;
        for (JsonNode t : meta.path("tensors")) {
            int[] shape = new int[t.path("shape").size()];
            long size = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = t.path("shape").get(i).asInt();
                size *= shape[i];
            }
            tensors.add(new TensorView(t.path("name").asText(), TensorKind.valueOf(t.path("kind").asText()), shape,
                    offset, size));
            tensorIndex.put(t.path("name").asText(), tensors.size() - 1);
            offset += size;
        }
        this.index = new FlatIndex(tensors);
        int world = meta.path("world").asInt();
        this.shards = new Shard[world];
        for (int r = 0; r < world; r++) {
            shards[r] = new Shard(fs, dir, r, world);
        }
    }

    public long step() {
        return meta.path("step").asLong();
    }

    public long optimizerStep() {
        return meta.path("optimizer_step").asLong();
    }

    /** The number of ranks that wrote it. */
    public int world() {
        return shards.length;
    }

    public String path() {
        return dir.toString();
    }

    /** The run state beside the tensors (stage, run id, spike history). */
    public Map<String, String> extra() {
        Map<String, String> m = new TreeMap<>();
        meta.path("extra").fields().forEachRemaining(e -> m.put(e.getKey(), e.getValue().asText()));
        return m;
    }

    /** The tensors as written (names, shapes, in layout order; offsets end to end). */
    public List<TensorView> tensors() {
        return index.tensors();
    }

    /** Fails, naming the first tensor that differs, unless the checkpoint holds exactly {@code expected}. */
    public void requireLayout(List<TensorView> expected) throws IOException {
        List<TensorView> have = index.tensors();
        for (int i = 0; i < Math.max(have.size(), expected.size()); i++) {
            TensorView a = i < have.size() ? have.get(i) : null, b = i < expected.size() ? expected.get(i) : null;
            if (a == null || b == null || !a.name().equals(b.name()) || !Arrays.equals(a.shape(), b.shape())) {
                throw new IOException(dir + ": tensor " + i + " is " + (a == null ? "absent" : a) + ", the model expects "
                        + (b == null ? "no more tensors" : b.name() + Arrays.toString(b.shape())));
            }
        }
    }

    /**
     * Writes the weights as one consolidated safetensors file under their HF names and shapes, streamed
     * tensor by tensor (what {@code ouro export} gives).
     */
    public void exportWeights(java.io.OutputStream out) throws IOException {
        try {
            Safetensors.write(out, tensors(), source(StateKind.MODEL), Map.of("format", "pt", "step",
                    Long.toString(step())));
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    /** Reads of one state kind by tensor name and element range; I/O errors come out unchecked, naming the file. */
    public TensorSource source(StateKind kind) {
        return (t, start, dst, off, len) -> {
            try {
                read(kind, t, start, dst, off, len);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
    }

    /** Every tensor of {@code kind} into {@code sink}, a chunk at a time, in layout order. */
    public void readAll(StateKind kind, List<TensorView> into, TensorSink sink) throws IOException {
        float[] buf = new float[Safetensors.CHUNK];
        for (TensorView t : into) {
            for (long done = 0; done < t.size(); ) {
                int n = (int) Math.min(buf.length, t.size() - done);
                read(kind, t, done, buf, 0, n);
                sink.write(t, done, buf, 0, n);
                done += n;
            }
        }
    }

    private void read(StateKind kind, TensorView t, long start, float[] dst, int off, int len) throws IOException {
        Integer i = tensorIndex.get(t.name());
        if (i == null) {
            throw new IOException(dir + ": no tensor " + t.name());
        }
        if (start < 0 || start + len > t.size()) {
            throw new IOException(dir + ": elements [" + start + ", " + (start + len) + ") are outside tensor " + t.name());
        }
        long g = index.start(i) + start;
        while (len > 0) {
            Shard s = shards[shardOf(g)];
            if (s != current && current != null) {
                current.block = null; // one block in memory per reader, whatever W wrote it
                current.cachedBlock = -1;
            }
            current = s;
            long pieceStart = Math.max(s.lo, index.start(i)) - index.start(i);
            Safetensors.Entry e = s.entry(ShardWriter.pieceName(kind, t, pieceStart));
            long at = start - pieceStart;
            int n = (int) Math.min(len, e.elements() - at);
            s.readFloats(e.begin() + 4 * at, dst, off, n);
            g += n;
            start += n;
            off += n;
            len -= n;
        }
    }

    private int shardOf(long g) {
        int lo = 0, hi = shards.length - 1;
        while (lo < hi) { // the last shard whose range starts at or before g
            int mid = (lo + hi + 1) >>> 1;
            if (shards[mid].lo <= g) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo;
    }

    @Override
    public void close() throws IOException {
        for (Shard s : shards) {
            s.close();
        }
    }

    /** The bytes of a shard are not those its writer recorded. */
    public static final class CorruptException extends IOException {
        CorruptException(String m) {
            super(m);
        }
    }

    /** One shard file: its marker, its header once read, and the block last read and verified. */
    private static final class Shard {
        final FileSystem fs;
        final Path file;
        final long lo, bytes;
        final int blockBytes;
        final long[] crc;
        FSDataInputStream in;
        Map<String, Safetensors.Entry> entries;
        long dataStart;
        long cachedBlock = -1;
        byte[] block;
        final ByteBuffer floats = ByteBuffer.allocate(4 * 4096).order(ByteOrder.LITTLE_ENDIAN);

        Shard(FileSystem fs, Path dir, int rank, int world) throws IOException {
            this.fs = fs;
            Path marker = new Path(dir, CheckpointStore.markerName(rank, world));
            JsonNode m = CheckpointStore.readJson(fs, marker);
            this.file = new Path(dir, m.path("file").asText());
            this.lo = m.path("range").path(0).asLong();
            this.bytes = m.path("bytes").asLong();
            this.blockBytes = m.path("block_bytes").asInt();
            this.crc = new long[m.path("crc32c").size()];
            for (int i = 0; i < crc.length; i++) {
                crc[i] = m.path("crc32c").get(i).asLong();
            }
            if (blockBytes <= 0 || crc.length != (bytes + blockBytes - 1) / blockBytes) {
                throw new IOException(marker + ": " + crc.length + " block checksums for " + bytes + " bytes in blocks of "
                        + blockBytes + " (corrupt marker)");
            }
        }

        Safetensors.Entry entry(String name) throws IOException {
            if (entries == null) {
                byte[] len = new byte[8];
                readBytes(0, len, 0, 8);
                long n = ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong();
                if (n < 2 || 8 + n > bytes) {
                    throw new CorruptException(file + ": header length " + n + " at offset 0 is not plausible");
                }
                byte[] h = new byte[(int) (8 + n)];
                readBytes(0, h, 0, h.length);
                Safetensors.Header header = Safetensors.readHeader(new ByteArrayInputStream(h), file.toString());
                entries = header.byName();
                dataStart = header.dataStart();
            }
            Safetensors.Entry e = entries.get(name);
            if (e == null) {
                throw new IOException(file + ": no entry " + name + " (the shard does not hold that range)");
            }
            return e;
        }

        /** {@code n} floats at data-section offset {@code pos}. */
        void readFloats(long pos, float[] dst, int off, int n) throws IOException {
            byte[] b = floats.array();
            while (n > 0) {
                int k = Math.min(n, b.length / 4);
                readBytes(dataStart + pos, b, 0, 4 * k);
                floats.clear();
                floats.asFloatBuffer().get(dst, off, k);
                pos += 4L * k;
                off += k;
                n -= k;
            }
        }

        void readBytes(long pos, byte[] dst, int off, int len) throws IOException {
            if (pos + len > bytes) {
                throw new IOException(file + ": bytes [" + pos + ", " + (pos + len) + ") are past its " + bytes + " bytes");
            }
            while (len > 0) {
                long b = pos / blockBytes;
                if (b != cachedBlock) {
                    load(b);
                }
                int at = (int) (pos - b * blockBytes);
                int n = Math.min(len, block.length - at);
                System.arraycopy(block, at, dst, off, n);
                pos += n;
                off += n;
                len -= n;
            }
        }

        private void load(long b) throws IOException {
            if (in == null) {
                long actual = fs.getFileStatus(file).getLen();
                if (actual != bytes) {
                    throw new CorruptException(file + ": " + actual + " bytes, its marker says " + bytes
                            + " (truncated or replaced)");
                }
                in = fs.open(file);
            }
            int n = (int) Math.min(blockBytes, bytes - b * blockBytes);
            if (block == null || block.length != n) {
                block = new byte[n];
            }
            cachedBlock = -1;
            in.readFully(b * blockBytes, block, 0, n);
            CRC32C c = new CRC32C();
            c.update(block, 0, n);
            if (c.getValue() != crc[(int) b]) {
                throw new CorruptException(file + ": block " + b + " (bytes " + b * blockBytes + "–" + (b * blockBytes + n)
                        + ") fails its CRC32C check (corrupt)");
            }
            cachedBlock = b;
        }

        void close() throws IOException {
            if (in != null) {
                in.close();
            }
        }
    }
}
