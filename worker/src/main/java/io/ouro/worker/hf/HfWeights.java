package io.ouro.worker.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * An HF weights file (safetensors: 8-byte little-endian header length, a JSON header of name → dtype, shape and
 * byte range, then the raw little-endian data) for interchange with the HF ecosystem: written in F32 or BF16 under
 * the layout's HF Ouro names, read from F32 or BF16. Both directions stream tensor by tensor, so files past
 * 2 GiB (Ouro-1.4B in BF16 is 2.9 GB) work. The checkpoints' own F32 files are {@code checkpoint.Safetensors}'s.
 */
public final class HfWeights {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_HEADER = 100L << 20;

    /** The element types written: F32 exactly, or BF16 (round to nearest even, relative error at most 2^-8). */
    public enum Dtype {
        F32(4), BF16(2);

        final int bytes;

        Dtype(int bytes) {
            this.bytes = bytes;
        }

        /** "fp32" / "f32" / "float32" or "bf16" / "bfloat16" (CLI and config spellings). */
        public static Dtype parse(String s) {
            return switch (s.toLowerCase(java.util.Locale.ROOT)) {
                case "fp32", "f32", "float32" -> F32;
                case "bf16", "bfloat16" -> BF16;
                default -> throw new IllegalArgumentException("dtype: expected bf16 or fp32, got '" + s + "'");
            };
        }

        /** The torch_dtype name HF's config.json uses. */
        public String torchName() {
            return this == F32 ? "float32" : "bfloat16";
        }
    }

    private HfWeights() {
    }

    /** The bfloat16 bits of {@code f}, rounded to nearest even (NaN stays a quiet NaN). */
    public static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    public static float fromBf16(short b) {
        return Float.intBitsToFloat((b & 0xFFFF) << 16);
    }

    /** {@code f} as it reads back after a BF16 round trip. */
    public static float roundBf16(float f) {
        return fromBf16(toBf16(f));
    }

    /** Writes every tensor of {@code layout} from {@code flat} in {@code dtype}, in the layout's order. */
    public static void write(OutputStream out, ParamLayout layout, float[] flat, Dtype dtype, Map<String, String> meta)
            throws IOException {
        ObjectNode header = JSON.createObjectNode();
        ObjectNode m = header.putObject("__metadata__");
        new TreeMap<>(meta).forEach(m::put);
        long pos = 0;
        for (TensorView t : layout.tensors()) {
            ObjectNode e = header.putObject(t.name());
            e.put("dtype", dtype.name());
            var shape = e.putArray("shape");
            for (int s : t.shape()) {
                shape.add(s);
            }
            var off = e.putArray("data_offsets");
            off.add(pos);
            off.add(pos + dtype.bytes * t.size());
            pos += dtype.bytes * t.size();
        }
        byte[] h = JSON.writeValueAsBytes(header);
        int padded = (h.length + 7) / 8 * 8;
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
        out.write(h);
        for (int i = h.length; i < padded; i++) {
            out.write(' ');
        }
        ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        for (TensorView t : layout.tensors()) {
            for (long i = t.offset(); i < t.offset() + t.size(); i++) {
                if (buf.remaining() < 4) {
                    out.write(buf.array(), 0, buf.position());
                    buf.clear();
                }
                if (dtype == Dtype.F32) {
                    buf.putFloat(flat[(int) i]);
                } else {
                    buf.putShort(toBf16(flat[(int) i]));
                }
            }
        }
        out.write(buf.array(), 0, buf.position());
    }

    /** One tensor of a file's header. */
    public record Entry(String name, String dtype, int[] shape, long begin, long end) {
    }

    /** The tensors a file's header lists (metadata aside), in file order. */
    public static List<Entry> header(JsonNode header, String file) throws IOException {
        List<Entry> out = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (f.getKey().equals("__metadata__")) {
                continue;
            }
            JsonNode e = f.getValue();
            JsonNode sh = e.path("shape"), off = e.path("data_offsets");
            if (!sh.isArray() || !off.isArray() || off.size() != 2) {
                throw new IOException(file + ": tensor " + f.getKey() + ": header entry lacks shape or data_offsets");
            }
            int[] shape = new int[sh.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = sh.get(i).asInt();
            }
            out.add(new Entry(f.getKey(), e.path("dtype").asText(), shape, off.get(0).asLong(), off.get(1).asLong()));
        }
        out.sort(Comparator.comparingLong(Entry::begin));
        return out;
    }

    /**
     * Reads the tensors this file holds into {@code flat} (laid out by {@code layout}) and returns their names. A
     * tensor the layout does not have, a wrong shape or an unsupported dtype is an error naming the file and the
     * tensor; tensors of the layout absent from this file are left alone (a sharded checkpoint spreads them).
     */
    public static Set<String> readInto(InputStream raw, String file, ParamLayout layout, float[] flat)
            throws IOException {
        DataInputStream in = new DataInputStream(raw);
        byte[] lenBytes = new byte[8];
        readFully(in, lenBytes, file, 0);
        long n = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (n < 2 || n > MAX_HEADER) {
            throw new IOException(file + ": header length " + n + " at offset 0 is not plausible (not safetensors?)");
        }
        byte[] h = new byte[(int) n];
        readFully(in, h, file, 8);
        JsonNode header;
        try {
            header = JSON.readTree(new String(h, StandardCharsets.UTF_8).trim());
        } catch (IOException e) {
            throw new IOException(file + ": header at offset 8 is not valid JSON: " + e.getMessage(), e);
        }
        long dataStart = 8 + n, pos = 0;
        Set<String> found = new HashSet<>();
        byte[] buf = new byte[1 << 20];
        for (Entry e : header(header, file)) {
            TensorView t;
            try {
                t = layout.get(e.name());
            } catch (IllegalArgumentException x) {
                throw new IOException(file + ": tensor " + e.name() + " is not part of an Ouro model of " + layout.config()
                        + " (a different architecture?)");
            }
            if (!Arrays.equals(e.shape(), t.shape())) {
                throw new IOException(file + ": tensor " + e.name() + " has shape " + Arrays.toString(e.shape())
                        + ", the model expects " + Arrays.toString(t.shape()));
            }
            int width = switch (e.dtype()) {
                case "F32" -> 4;
                case "BF16" -> 2;
                default -> throw new IOException(file + ": tensor " + e.name() + " has dtype " + e.dtype()
                        + "; F32 or BF16 expected");
            };
            if (e.end() - e.begin() != width * t.size() || e.begin() < pos) {
                throw new IOException(file + ": tensor " + e.name() + " bytes [" + (dataStart + e.begin()) + ", "
                        + (dataStart + e.end()) + ") do not hold its shape in " + e.dtype() + " or overlap another");
            }
            in.skipNBytes(e.begin() - pos);
            long done = 0, total = t.size();
            while (done < total) {
                int count = (int) Math.min(total - done, buf.length / width);
                readFully(in, buf, count * width, file, dataStart + e.begin() + done * width);
                ByteBuffer bb = ByteBuffer.wrap(buf, 0, count * width).order(ByteOrder.LITTLE_ENDIAN);
                int at = (int) (t.offset() + done);
                for (int i = 0; i < count; i++) {
                    flat[at + i] = width == 4 ? bb.getFloat() : fromBf16(bb.getShort());
                }
                done += count;
            }
            pos = e.end();
            found.add(e.name());
        }
        return found;
    }

    private static void readFully(DataInputStream in, byte[] b, String file, long offset) throws IOException {
        readFully(in, b, b.length, file, offset);
    }

    private static void readFully(DataInputStream in, byte[] b, int len, String file, long offset) throws IOException {
        try {
            in.readFully(b, 0, len);
        } catch (EOFException e) {
            throw new IOException(file + ": ends before offset " + (offset + len) + " (truncated)", e);
        }
    }
}
