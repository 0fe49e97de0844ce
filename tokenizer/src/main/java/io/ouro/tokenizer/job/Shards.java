package io.ouro.tokenizer.job;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BaseIntVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.UInt2Vector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.ipc.SeekableReadChannel;
import org.apache.arrow.vector.ipc.message.ArrowBlock;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SeekableByteChannel;
import java.util.List;
import java.util.Map;

/**
 * The token shard format: a standard Arrow IPC file with one column {@code tokens}, a list of unsigned
 * 16-bit integers (uint16, when the vocabulary has at most 65,536 ids) or of signed 32-bit integers.
 * Each row is one document, its ids followed by the EOS id, so the list's flat child vector is the
 * document token stream with EOS between documents and the list offsets are the document boundaries.
 * Schema metadata: {@code ouro.format=token-shard-1}, {@code ouro.source}, {@code ouro.tokenizer},
 * {@code ouro.eos}. No compression (portable to every Arrow reader).
 */
public final class Shards {

    public static final String FORMAT = "token-shard-1";
    /** Documents per record batch. */
    static final int BATCH_DOCS = 4096;

    private Shards() {
    }

    public static Schema schema(boolean uint16, String source, String tokenizer, int eos) {
        ArrowType t = uint16 ? new ArrowType.Int(16, false) : new ArrowType.Int(32, true);
        Field child = new Field("item", FieldType.notNullable(t), null);
        Field tokens = new Field("tokens", FieldType.notNullable(ArrowType.List.INSTANCE), List.of(child));
        return new Schema(List.of(tokens), Map.of("ouro.format", FORMAT, "ouro.source", source,
                "ouro.tokenizer", tokenizer, "ouro.eos", Integer.toString(eos)));
    }

    /** Writes documents (each with EOS appended) into one Arrow file on {@code out}. */
    public static final class Writer implements AutoCloseable {
        private final BufferAllocator alloc = new RootAllocator();
        private final VectorSchemaRoot root;
        private final ListVector list;
        private final ArrowFileWriter writer;
        private final boolean uint16;
        private final int eos;
        private int rows;
        private long docs, tokens;

        public Writer(OutputStream out, boolean uint16, String source, String tokenizer, int eos) throws IOException {
            this.uint16 = uint16;
            this.eos = eos;
            root = VectorSchemaRoot.create(schema(uint16, source, tokenizer, eos), alloc);
            list = (ListVector) root.getVector("tokens");
            writer = new ArrowFileWriter(root, null, Channels.newChannel(out));
            writer.start();
            list.allocateNew();
        }

        public void add(int[] ids, int n) throws IOException {
            FieldVector data = list.getDataVector();
            int start = list.startNewValue(rows);
            int need = start + n + 1;
            while (data.getValueCapacity() < need) {
                data.reAlloc();
            }
            for (int i = 0; i < n; i++) {
                set(data, start + i, ids[i]);
            }
            set(data, start + n, eos);
            list.endValue(rows, n + 1);
            rows++;
            docs++;
            tokens += n + 1;
            if (rows == BATCH_DOCS) {
                flush();
            }
        }

        private void set(FieldVector v, int i, int id) {
            if (uint16) {
                ((UInt2Vector) v).set(i, (char) id);
            } else {
                ((IntVector) v).set(i, id);
            }
        }

        private void flush() throws IOException {
            if (rows == 0) {
                return;
            }
            list.setValueCount(rows);
            root.setRowCount(rows);
            writer.writeBatch();
            root.clear();
            list.allocateNew();
            rows = 0;
        }

        public long documents() {
            return docs;
        }

        public long tokens() {
            return tokens;
        }

        @Override
        public void close() throws IOException {
            flush();
            writer.end();
            writer.close();
            root.close();
            alloc.close();
        }
    }

    /** What a shard holds: its token stream and the start of each document in it. */
    public record Content(int[] tokens, long[] docStarts, Map<String, String> metadata) {
    }

    /**
     * Reads a whole shard. Anything that is not a well-formed shard is an IOException naming the file and,
     * where Arrow can tell, the offset or record batch.
     */
    public static Content read(FileSystem fs, Path path) throws IOException {
        long len = fs.getFileStatus(path).getLen();
        try (FSDataInputStream in = fs.open(path);
             BufferAllocator alloc = new RootAllocator();
             ArrowFileReader r = new ArrowFileReader(new SeekableReadChannel(new HdfsChannel(in, len)), alloc)) {
            Schema s;
            try {
                s = r.getVectorSchemaRoot().getSchema();
            } catch (RuntimeException | IOException e) {
                throw new IOException(path + ": not an Arrow IPC file (footer or schema unreadable, " + len
                        + " bytes): " + e.getMessage(), e);
            }
            if (!FORMAT.equals(s.getCustomMetadata().get("ouro.format")) || s.findField("tokens") == null) {
                throw new IOException(path + ": not a token shard (schema " + s + ")");
            }
            List<ArrowBlock> blocks = r.getRecordBlocks();
            long total = 0, docs = 0;
            int[] tok = new int[1024];
            long[] starts = new long[64];
            for (int b = 0; b < blocks.size(); b++) {
                try {
                    r.loadRecordBatch(blocks.get(b));
                } catch (RuntimeException | IOException e) {
                    throw new IOException(path + ": record batch " + b + " at offset " + blocks.get(b).getOffset()
                            + " is corrupt: " + e.getMessage(), e);
                }
                ListVector list = (ListVector) r.getVectorSchemaRoot().getVector("tokens");
                BaseIntVector data = (BaseIntVector) list.getDataVector();
                int rowsInBatch = list.getValueCount();
                for (int row = 0; row < rowsInBatch; row++) {
                    int a = list.getElementStartIndex(row), e = list.getElementEndIndex(row);
                    if (a < 0 || e < a || e > data.getValueCount()) {
                        throw new IOException(path + ": record batch " + b + " row " + row + ": offsets [" + a + ", "
                                + e + ") outside the " + data.getValueCount() + " values (corrupt)");
                    }
                    if (docs == starts.length) {
                        starts = java.util.Arrays.copyOf(starts, starts.length * 2);
                    }
                    starts[(int) docs++] = total;
                    if (total + (e - a) > tok.length) {
                        tok = java.util.Arrays.copyOf(tok, (int) Math.max(tok.length * 2L, total + (e - a)));
                    }
                    for (int i = a; i < e; i++) {
                        tok[(int) total++] = (int) data.getValueAsLong(i);
                    }
                }
            }
            return new Content(java.util.Arrays.copyOf(tok, (int) total), java.util.Arrays.copyOf(starts, (int) docs),
                    s.getCustomMetadata());
        }
    }

    /** A seekable channel over a Hadoop input stream: Arrow's file reader needs to seek to the footer. */
    static final class HdfsChannel implements SeekableByteChannel {
        private final FSDataInputStream in;
        private final long size;
        private boolean open = true;

        HdfsChannel(FSDataInputStream in, long size) {
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
