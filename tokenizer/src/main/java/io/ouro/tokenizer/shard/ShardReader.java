package io.ouro.tokenizer.shard;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BaseIntVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.ipc.SeekableReadChannel;
import org.apache.arrow.vector.ipc.message.ArrowBlock;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Reads a whole shard, row by row, with Arrow's own file reader: for inspection, for rewriting shards of
 * {@code token-shard-1} and for tests. Training reads windows through {@link ShardStream} instead.
 */
public final class ShardReader {

    private ShardReader() {
    }

    /** Receives the rows of a shard in order: {@code ids[0..n)}; {@code endsDocument} when the last is EOS. */
    public interface Rows {
        void row(int[] ids, int n, boolean endsDocument) throws IOException;
    }

    /** What a shard holds: its token stream, the start of each document in it, its schema metadata. */
    public record Content(int[] tokens, long[] docStarts, Map<String, String> metadata) {
    }

    /** The shard's schema metadata (format, source, tokenizer, eos) without reading its batches. */
    public static Map<String, String> metadata(FileSystem fs, Path path) throws IOException {
        return forEachRow(fs, path, null);
    }

    /** Reads a whole shard into memory (small shards: tests, inspection). */
    public static Content read(FileSystem fs, Path path) throws IOException {
        int[][] tok = {new int[1024]};
        long[][] starts = {new long[64]};
        long[] count = {0, 0}; // tokens, documents
        boolean[] atDocStart = {true};
        Map<String, String> meta = forEachRow(fs, path, (ids, n, ends) -> {
            if (atDocStart[0]) {
                if (count[1] == starts[0].length) {
                    starts[0] = Arrays.copyOf(starts[0], starts[0].length * 2);
                }
                starts[0][(int) count[1]++] = count[0];
            }
            if (count[0] + n > tok[0].length) {
                tok[0] = Arrays.copyOf(tok[0], (int) Math.max(tok[0].length * 2L, count[0] + n));
            }
            System.arraycopy(ids, 0, tok[0], (int) count[0], n);
            count[0] += n;
            atDocStart[0] = ends;
        });
        return new Content(Arrays.copyOf(tok[0], (int) count[0]), Arrays.copyOf(starts[0], (int) count[1]), meta);
    }

    /**
     * Calls {@code rows} for each row of the shard (none when null) and returns its schema metadata. In
     * {@code token-shard-1} every row is a document; in {@code token-shard-2} a row ends a document when
     * its last id is EOS. Anything that is not a well-formed shard is an error naming the file and, where
     * Arrow can tell, the record batch and offset.
     */
    public static Map<String, String> forEachRow(FileSystem fs, Path path, Rows rows) throws IOException {
        long len = fs.getFileStatus(path).getLen();
        try (FSDataInputStream in = fs.open(path);
             BufferAllocator alloc = new RootAllocator();
             ArrowFileReader r = new ArrowFileReader(new SeekableReadChannel(new HadoopChannel(in, len)), alloc)) {
            Schema s;
            try {
                s = r.getVectorSchemaRoot().getSchema();
            } catch (RuntimeException | IOException e) {
                throw new ShardException(path + ": not an Arrow IPC file (footer or schema unreadable, " + len
                        + " bytes): " + e.getMessage(), e);
            }
            Map<String, String> meta = s.getCustomMetadata();
            String format = meta.get("ouro.format");
            if (!(ShardFormat.FORMAT.equals(format) || ShardFormat.FORMAT_1.equals(format))
                    || s.findField(ShardFormat.COLUMN) == null) {
                throw new ShardException(path + ": not a token shard (schema " + s + ")");
            }
            if (rows == null) {
                return meta;
            }
            boolean v1 = ShardFormat.FORMAT_1.equals(format);
            int eos = Integer.parseInt(meta.get("ouro.eos"));
            List<ArrowBlock> blocks = r.getRecordBlocks();
            int[] ids = new int[1024];
            for (int b = 0; b < blocks.size(); b++) {
                try {
                    r.loadRecordBatch(blocks.get(b));
                } catch (RuntimeException | IOException e) {
                    throw new ShardException(path + ": record batch " + b + " at offset " + blocks.get(b).getOffset()
                            + " is corrupt: " + e.getMessage(), e);
                }
                ListVector list = (ListVector) r.getVectorSchemaRoot().getVector(ShardFormat.COLUMN);
                BaseIntVector data = (BaseIntVector) list.getDataVector();
                for (int row = 0; row < list.getValueCount(); row++) {
                    int a = list.getElementStartIndex(row), e = list.getElementEndIndex(row);
                    if (a < 0 || e < a || e > data.getValueCount()) {
                        throw new ShardException(path + ": record batch " + b + " row " + row + ": offsets [" + a
                                + ", " + e + ") outside the " + data.getValueCount() + " values (corrupt)");
                    }
                    if (e - a > ids.length) {
                        ids = new int[Math.max(e - a, ids.length * 2)];
                    }
                    for (int i = a; i < e; i++) {
                        ids[i - a] = (int) data.getValueAsLong(i);
                    }
                    rows.row(ids, e - a, v1 || (e > a && ids[e - a - 1] == eos));
                }
            }
            return meta;
        }
    }

    /** A seekable channel over a Hadoop input stream: Arrow's file reader seeks to the footer. */
    static final class HadoopChannel implements SeekableByteChannel {
        private final FSDataInputStream in;
        private final long size;
        private boolean open = true;

        HadoopChannel(FSDataInputStream in, long size) {
            this.in = in;
            this.size = size;
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            int want = dst.remaining();
            if (want == 0) {
                return 0;
            }
            byte[] b = new byte[Math.min(want, 1 << 20)];
            int n = in.read(b, 0, b.length);
            if (n > 0) {
                dst.put(b, 0, n);
            }
            return n;
        }

        @Override
        public int write(ByteBuffer src) {
            throw new UnsupportedOperationException("read-only");
        }

        @Override
        public long position() throws IOException {
            return in.getPos();
        }

        @Override
        public SeekableByteChannel position(long p) throws IOException {
            in.seek(p);
            return this;
        }

        @Override
        public long size() {
            return size;
        }

        @Override
        public SeekableByteChannel truncate(long s) {
            throw new UnsupportedOperationException("read-only");
        }

        @Override
        public boolean isOpen() {
            return open;
        }

        @Override
        public void close() {
            open = false;
        }
    }
}
