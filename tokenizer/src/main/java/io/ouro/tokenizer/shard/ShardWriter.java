package io.ouro.tokenizer.shard;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.UInt2Vector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.VectorUnloader;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.ipc.message.ArrowBlock;
import org.apache.arrow.vector.ipc.message.ArrowRecordBatch;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * Writes one token shard ({@link ShardFormat}): documents in, each followed by EOS, cut into record batches
 * of exactly {@code batchTokens} tokens (the last one shorter), a document crossing a batch boundary
 * continuing in the next batch's first row. While writing it records each batch's file offset and keyed
 * CRC32C, and puts them into the footer as the batch index; {@link #finish()} says where the index lies.
 */
public final class ShardWriter implements AutoCloseable {

    private final BufferAllocator alloc = new RootAllocator();
    private final VectorSchemaRoot root;
    private final ListVector list;
    private final VectorUnloader unloader;
    private final Writer writer;
    private final Channel channel;
    private final Map<String, String> footer = new LinkedHashMap<>();
    private final ByteArrayOutputStream index = new ByteArrayOutputStream();
    private final boolean uint16;
    private final int eos;
    private final int batchTokens;
    private final long crcKey;
    private int rows, inBatch;
    private long docs, tokens;
    private Info info;

    /** What was written: the manifest's view of the shard. */
    public record Info(long documents, long tokens, long bytes, String sha256, long indexOffset, int batches) {
    }

    public ShardWriter(OutputStream out, boolean uint16, String source, String tokenizer, int eos, int batchTokens,
                       long crcKey) throws IOException {
        if (batchTokens < 1) {
            throw new IllegalArgumentException("batch tokens must be >= 1, got " + batchTokens);
        }
        this.uint16 = uint16;
        this.eos = eos;
        this.batchTokens = batchTokens;
        this.crcKey = crcKey;
        this.channel = new Channel(out);
        root = VectorSchemaRoot.create(ShardFormat.schema(uint16, source, tokenizer, eos, batchTokens), alloc);
        list = (ListVector) root.getVector(ShardFormat.COLUMN);
        // the map is read when the footer is written (end()), after the index is complete
        unloader = new VectorUnloader(root);
        writer = new Writer(root, channel, footer);
        writer.start();
        list.allocateNew();
    }

    /** Appends one document: {@code ids[0..n)} and EOS. */
    public void add(int[] ids, int n) throws IOException {
        int done = 0;
        while (done <= n) { // n ids and the EOS
            int take = Math.min(n + 1 - done, batchTokens - inBatch);
            FieldVector data = list.getDataVector();
            int start = list.startNewValue(rows);
            while (data.getValueCapacity() < start + take) {
                data.reAlloc();
            }
            for (int i = 0; i < take; i++) {
                set(data, start + i, done + i < n ? ids[done + i] : eos);
            }
            list.endValue(rows, take);
            rows++;
            inBatch += take;
            done += take;
            if (inBatch == batchTokens) {
                flush();
            }
        }
        docs++;
        tokens += n + 1;
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
        long before = channel.position;
        channel.startBatch(crcKey);
        // validity buffers may be empty when nothing is null (the IPC format says so): 6% fewer bytes a batch
        try (ArrowRecordBatch full = unloader.getRecordBatch()) {
            List<ArrowBuf> b = full.getBuffers();
            ArrowBuf none = alloc.getEmpty();
            try (ArrowRecordBatch slim = new ArrowRecordBatch(full.getLength(), full.getNodes(),
                    List.of(none, b.get(1), none, b.get(3)))) {
                writer.write(slim);
            }
        }
        List<ArrowBlock> blocks = writer.getRecordBlocks();
        ArrowBlock b = blocks.get(blocks.size() - 1);
        if (b.getOffset() != before || before + b.getMetadataLength() + b.getBodyLength() != channel.position) {
            throw new IllegalStateException("record batch " + (blocks.size() - 1) + " at " + b.getOffset()
                    + " is not the bytes written from " + before + " to " + channel.position);
        }
        ShardFormat.putEntry(index, before, (int) channel.crc.getValue());
        root.clear();
        list.allocateNew();
        rows = 0;
        inBatch = 0;
    }

    public long documents() {
        return docs;
    }

    public long tokens() {
        return tokens;
    }

    /** Writes the last batch, the index and the footer; returns what the manifest lists. */
    public Info finish() throws IOException {
        if (info != null) {
            return info;
        }
        flush();
        ShardFormat.putEntry(index, channel.position, 0); // where the batches end
        footer.put(ShardFormat.INDEX_KEY, ShardFormat.INDEX_PREFIX + java.util.Base64.getEncoder()
                .encodeToString(index.toByteArray()));
        channel.captureFrom(channel.position);
        writer.end();
        writer.close();
        root.close();
        alloc.close();
        byte[] tail = channel.captured.toByteArray();
        byte[] prefix = ShardFormat.INDEX_PREFIX.getBytes(StandardCharsets.US_ASCII);
        int at = indexOf(tail, prefix);
        if (at < 0) {
            throw new IllegalStateException("the batch index is not in the footer written");
        }
        int batches = index.size() / ShardFormat.ENTRY_BYTES - 1;
        info = new Info(docs, tokens, channel.position, HexFormat.of().formatHex(channel.sha.digest()),
                channel.captureStart + at + prefix.length, batches);
        return info;
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    @Override
    public void close() throws IOException {
        finish();
    }

    /** Arrow's file writer, given batches whose buffers we chose. */
    private static final class Writer extends ArrowFileWriter {
        Writer(VectorSchemaRoot root, WritableByteChannel out, Map<String, String> footer) {
            super(root, null, out, footer);
        }

        void write(ArrowRecordBatch batch) throws IOException {
            writeRecordBatch(batch);
        }
    }

    /** Counts, digests and checksums what Arrow writes; keeps the footer's bytes to find the index in. */
    private static final class Channel implements WritableByteChannel {
        final OutputStream out;
        final MessageDigest sha = ShardFormat.sha256();
        final CRC32C crc = new CRC32C();
        final ByteArrayOutputStream captured = new ByteArrayOutputStream();
        long position, captureStart = -1;
        boolean open = true;

        Channel(OutputStream out) {
            this.out = out;
        }

        void startBatch(long key) {
            crc.reset();
            crc.update(ShardFormat.keyBytes(key));
        }

        void captureFrom(long p) {
            captureStart = p;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            int n = src.remaining();
            byte[] b = new byte[n];
            src.get(b);
            out.write(b);
            sha.update(b);
            crc.update(b);
            if (captureStart >= 0) {
                captured.write(b);
            }
            position += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return open;
        }

        @Override
        public void close() throws IOException {
            open = false;
            out.close();
        }
    }
}
