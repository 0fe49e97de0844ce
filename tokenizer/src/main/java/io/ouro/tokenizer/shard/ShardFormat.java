package io.ouro.tokenizer.shard;

import org.apache.arrow.flatbuf.Buffer;
import org.apache.arrow.flatbuf.Message;
import org.apache.arrow.flatbuf.MessageHeader;
import org.apache.arrow.flatbuf.RecordBatch;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * The token shard format, {@code token-shard-2}: a standard Arrow IPC file (no compression, readable by
 * any Arrow implementation) with one column {@code tokens}, a list of uint16 (vocabularies of at most
 * 65,536 ids) or int32. The flat child vector of all rows, batch after batch, is the token stream, each
 * document followed by EOS. Every record batch holds exactly {@code ouro.batch_tokens} tokens (the last one
 * fewer), so batch k starts at token {@code k * batchTokens}; a row is a document or the part of one that
 * falls into the batch.
 *
 * <p>The footer's custom metadata {@code ouro.index} holds the batch index: {@value #INDEX_PREFIX} then,
 * base64, one 12-byte entry per batch (its file offset, int64 little-endian, and the CRC32C of its bytes
 * keyed by the shard's {@code crc_key}, int32) and a last entry holding the offset where the batches end.
 * An entry is 16 base64 characters, so a reader finds the entries of batches {@code [a, b]} at
 * {@code indexOffset + 16a} (the manifest gives {@code index_offset}) and reads a window's batches with two
 * positioned reads: their entries, then their bytes. The CRC is keyed (the key's 8 bytes, then the batch's)
 * so that a shard swapped for another, whose own index is self-consistent, fails the check too.
 *
 * <p>{@code token-shard-1} (earlier jobs: batches of 4096 documents, no index) is read only whole, by
 * {@link ShardReader}, and rewritten by {@code ouro reshard}.
 */
public final class ShardFormat {

    public static final String FORMAT = "token-shard-2";
    public static final String FORMAT_1 = "token-shard-1";
    public static final String COLUMN = "tokens";
    public static final String INDEX_KEY = "ouro.index";
    public static final String INDEX_PREFIX = "ouro-index-1:";
    /** Bytes of one index entry, and its base64 characters in the file. */
    static final int ENTRY_BYTES = 12, ENTRY_CHARS = 16;
    /** Tokens per record batch: 2 KB of uint16 ids; a 4K-token window touches 5 batches (see README, data). */
    public static final int DEFAULT_BATCH_TOKENS = 1024;

    private ShardFormat() {
    }

    public static Schema schema(boolean uint16, String source, String tokenizer, int eos, int batchTokens) {
        ArrowType t = uint16 ? new ArrowType.Int(16, false) : new ArrowType.Int(32, true);
        Field child = new Field("item", FieldType.notNullable(t), null);
        Field tokens = new Field(COLUMN, FieldType.notNullable(ArrowType.List.INSTANCE), List.of(child));
        return new Schema(List.of(tokens), Map.of("ouro.format", FORMAT, "ouro.source", source,
                "ouro.tokenizer", tokenizer, "ouro.eos", Integer.toString(eos),
                "ouro.batch_tokens", Integer.toString(batchTokens)));
    }

    /**
     * The CRC key of a shard: a function of what identifies it (source, file name, tokenizer, input), so
     * that reruns stay byte-identical and two shards of a corpus never share a key.
     */
    public static long crcKey(String source, String name, String tokenizerSha256, String input) {
        byte[] h = sha256().digest(String.join("\0", "ouro-crc-key", source, name, tokenizerSha256, input)
                .getBytes(StandardCharsets.UTF_8));
        return ByteBuffer.wrap(h).getLong();
    }

    static byte[] keyBytes(long key) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(key).array();
    }

    /** The keyed CRC32C of {@code b[off, off + len)}. */
    static int crc(long key, byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(keyBytes(key));
        c.update(b, off, len);
        return (int) c.getValue();
    }

    static void putEntry(ByteArrayOutputStream index, long offset, int crc) {
        index.writeBytes(ByteBuffer.allocate(ENTRY_BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(offset).putInt(crc)
                .array());
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Where the ids of one record batch lie in its bytes {@code b[off, off + len)} (an IPC message:
     * continuation marker, metadata length, the flatbuffer {@code Message}, the body). Returns the byte
     * offset in {@code b} of the child data buffer; throws with {@code what} naming the batch when the
     * message is not a record batch of {@code count} ids of {@code width} bytes.
     */
    static int dataOffset(byte[] b, int off, int len, int count, int width, String what) throws ShardException {
        ByteBuffer bb = ByteBuffer.wrap(b, off, len).slice().order(ByteOrder.LITTLE_ENDIAN);
        if (len < 8 || bb.getInt(0) != -1) {
            throw new ShardException(what + ": no IPC message marker");
        }
        int meta = bb.getInt(4);
        if (meta <= 0 || 8L + meta > len) {
            throw new ShardException(what + ": metadata length " + meta + " outside the batch's " + len + " bytes");
        }
        Message m;
        RecordBatch rb;
        try {
            m = Message.getRootAsMessage(bb.slice(8, meta).order(ByteOrder.LITTLE_ENDIAN));
            if (m.headerType() != MessageHeader.RecordBatch) {
                throw new ShardException(what + ": message of type " + m.headerType() + ", not a record batch");
            }
            rb = (RecordBatch) m.header(new RecordBatch());
        } catch (RuntimeException e) {
            throw new ShardException(what + ": unreadable message metadata (" + e + ")");
        }
        long bodyStart = 8L + meta;
        if (rb.nodesLength() != 2 || rb.buffersLength() != 4 || rb.compression() != null) {
            throw new ShardException(what + ": not a batch of one uncompressed list column");
        }
        if (rb.nodes(1).length() != count) {
            throw new ShardException(what + ": holds " + rb.nodes(1).length() + " tokens, expected " + count);
        }
        Buffer data = rb.buffers(3);
        if (data.offset() < 0 || data.length() < (long) count * width || bodyStart + data.offset() + data.length() > len
                || m.bodyLength() != len - bodyStart) {
            throw new ShardException(what + ": data buffer [" + data.offset() + ", +" + data.length()
                    + ") does not fit its body of " + (len - bodyStart) + " bytes");
        }
        return (int) (off + bodyStart + data.offset());
    }
}
