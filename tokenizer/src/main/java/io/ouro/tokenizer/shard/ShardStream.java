package io.ouro.tokenizer.shard;

import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The token stream of a manifest's shards, in order, with random access: tokens {@code [start, start+len)}
 * cost two positioned reads per shard they fall in (the index entries of the record batches they touch,
 * then those batches), each batch checked against its keyed CRC32C before any of its ids is used. No shard
 * is read whole and nothing is cached but open file handles, so the bytes read stay close to the bytes
 * asked for at any corpus size. Thread-safe: reads from many threads go out concurrently.
 */
public final class ShardStream implements AutoCloseable {

    /** Reads tokens {@code [from, from + len)} of shard {@code shard} (a test can synthesise them). */
    public interface Ranges extends AutoCloseable {
        void read(int shard, long from, int[] dst, int off, int len) throws IOException;

        @Override
        default void close() throws IOException {
        }
    }

    private final String name;
    private final Manifest manifest;
    private final Ranges ranges;

    public ShardStream(String name, Manifest manifest, Ranges ranges) {
        this.name = name;
        this.manifest = manifest;
        this.ranges = ranges;
    }

    /** Opens a manifest's stream on its FileSystem; shards of {@code token-shard-1} are refused with the fix. */
    public static ShardStream open(FileSystem fs, Path manifestPath) throws IOException {
        Manifest m = Manifest.read(fs, manifestPath);
        if (!m.format().equals(ShardFormat.FORMAT)) {
            throw new ShardException(manifestPath + ": its shards are " + m.format() + " (whole-shard reads, no batch"
                    + " index), which training no longer reads; rewrite them once with: ouro reshard --manifest "
                    + manifestPath + " --output <new directory>, then point data.manifest at <new directory>/manifest.json");
        }
        return new ShardStream(manifestPath.toString(), m, new Positioned(fs, manifestPath.getParent(), m));
    }

    public String name() {
        return name;
    }

    public Manifest manifest() {
        return manifest;
    }

    public long tokens() {
        return manifest.tokens();
    }

    /** Copies tokens {@code [start, start + len)} of the stream into {@code dst[off..]}. */
    public void read(long start, int[] dst, int off, int len) throws IOException {
        ShardTable t = manifest.shards();
        if (start < 0 || len < 0 || start + len > t.totalTokens()) {
            throw new IndexOutOfBoundsException(name + ": tokens [" + start + ", " + (start + len) + ") outside [0, "
                    + t.totalTokens() + ")");
        }
        while (len > 0) {
            int s = t.shardOf(start);
            long from = start - t.start(s);
            int n = (int) Math.min(len, t.tokens(s) - from);
            ranges.read(s, from, dst, off, n);
            start += n;
            off += n;
            len -= n;
        }
    }

    @Override
    public void close() throws IOException {
        ranges.close();
    }

    /** The real reader: positioned reads ({@code PositionedReadable}) on any Hadoop FileSystem. */
    static final class Positioned implements Ranges {
        private static final int OPEN_FILES = 128;
        private final FileSystem fs;
        private final Path dir;
        private final Manifest m;
        private final int width;
        private final Map<Integer, Handle> open = new LinkedHashMap<>(16, 0.75f, true);

        Positioned(FileSystem fs, Path dir, Manifest m) {
            this.fs = fs;
            this.dir = dir;
            this.m = m;
            this.width = m.uint16() ? 2 : 4;
        }

        /** An open file, closed when evicted and no read holds it. */
        private static final class Handle {
            final FSDataInputStream in;
            int users;
            boolean evicted;

            Handle(FSDataInputStream in) {
                this.in = in;
            }
        }

        private Handle acquire(int shard) throws IOException {
            synchronized (open) {
                Handle h = open.get(shard);
                if (h == null) {
                    h = new Handle(fs.open(new Path(dir, m.shards().path(shard))));
                    open.put(shard, h);
                    if (open.size() > OPEN_FILES) {
                        var it = open.entrySet().iterator();
                        Handle old = it.next().getValue();
                        it.remove();
                        old.evicted = true;
                        if (old.users == 0) {
                            old.in.close();
                        }
                    }
                }
                h.users++;
                return h;
            }
        }

        private void release(Handle h) throws IOException {
            synchronized (open) {
                if (--h.users == 0 && h.evicted) {
                    h.in.close();
                }
            }
        }

        @Override
        public void read(int shard, long from, int[] dst, int off, int len) throws IOException {
            Handle h = acquire(shard);
            try {
                read(h.in, shard, from, dst, off, len);
            } finally {
                release(h);
            }
        }

        private void read(FSDataInputStream in, int shard, long from, int[] dst, int off, int len) throws IOException {
            ShardTable t = m.shards();
            Path file = new Path(dir, t.path(shard));
            int bt = m.batchTokens();
            long k0 = from / bt, k1 = (from + len - 1) / bt;
            int nb = (int) (k1 - k0 + 1);
            // the index entries of batches k0..k1 and the offset after k1
            byte[] chars = new byte[(nb + 1) * ShardFormat.ENTRY_CHARS];
            long at = t.indexOffset(shard) + k0 * ShardFormat.ENTRY_CHARS;
            readFully(in, file, at, chars, "the index entries of record batches " + k0 + "-" + k1);
            ByteBuffer idx;
            try {
                idx = ByteBuffer.wrap(Base64.getDecoder().decode(chars)).order(ByteOrder.LITTLE_ENDIAN);
            } catch (IllegalArgumentException e) {
                throw new ShardException(file + ": the index entries of record batches " + k0 + "-" + k1 + " at offset "
                        + at + " are not base64 (corrupt, or not the shard the manifest lists)");
            }
            long[] offs = new long[nb + 1];
            int[] crcs = new int[nb];
            for (int i = 0; i <= nb; i++) {
                offs[i] = idx.getLong(i * ShardFormat.ENTRY_BYTES);
                if (i < nb) {
                    crcs[i] = idx.getInt(i * ShardFormat.ENTRY_BYTES + 8);
                }
                long maxBatch = (long) bt * width + (1 << 16);
                if (i > 0 && (offs[i] <= offs[i - 1] || offs[i] - offs[i - 1] > maxBatch)) {
                    throw new ShardException(file + ": the index entry of record batch " + (k0 + i - 1) + " at offset "
                            + (at + (i - 1L) * ShardFormat.ENTRY_CHARS) + " gives " + (offs[i] - offs[i - 1])
                            + " bytes (corrupt index, or not the shard the manifest lists)");
                }
            }
            byte[] bytes = new byte[(int) (offs[nb] - offs[0])];
            readFully(in, file, offs[0], bytes, "record batch" + (nb > 1 ? "es " + k0 + "-" + k1 : " " + k0));
            for (int i = 0; i < nb; i++) {
                long k = k0 + i;
                int a = (int) (offs[i] - offs[0]), blen = (int) (offs[i + 1] - offs[i]);
                String what = file + ": record batch " + k + " at offset " + offs[i] + " (" + blen + " bytes)";
                int crc = ShardFormat.crc(t.crcKey(shard), bytes, a, blen);
                if (crc != crcs[i]) {
                    throw new ShardException(what + ": CRC32C " + Integer.toHexString(crc) + " does not match the"
                            + " index's " + Integer.toHexString(crcs[i]) + " (corrupt, or not the shard the manifest"
                            + " lists)");
                }
                long first = k * bt;
                int count = (int) Math.min(bt, t.tokens(shard) - first);
                int data = ShardFormat.dataOffset(bytes, a, blen, count, width, what);
                long lo = Math.max(from, first), hi = Math.min(from + len, first + count);
                ByteBuffer v = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
                int d = off + (int) (lo - from);
                for (long p = lo; p < hi; p++) {
                    int at2 = data + (int) (p - first) * width;
                    dst[d++] = width == 2 ? v.getChar(at2) : v.getInt(at2);
                }
            }
        }

        private void readFully(FSDataInputStream in, Path file, long at, byte[] b, String what) throws IOException {
            try {
                in.readFully(at, b, 0, b.length);
            } catch (EOFException e) {
                long size = fs.getFileStatus(file).getLen();
                throw new ShardException(file + ": " + what + " at offset " + at + " (" + b.length + " bytes) lie"
                        + " beyond the end of the file (" + size + " bytes): truncated, or not the shard the manifest"
                        + " lists", e);
            }
        }

        @Override
        public void close() throws IOException {
            synchronized (open) {
                for (Handle h : open.values()) {
                    h.evicted = true;
                    if (h.users == 0) {
                        h.in.close();
                    }
                }
                open.clear();
            }
        }
    }
}
