package io.ouro.worker.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.worker.model.Bf16;
import io.ouro.worker.model.TensorSink;
import io.ouro.worker.model.TensorSource;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The safetensors format (the HF ecosystem's weights file), the one owner of it for checkpoints and HF
 * directories: an 8-byte little-endian header length, a JSON header mapping each tensor name to dtype, shape
 * and byte range within the data, then the raw little-endian data. Everything here streams (offsets are
 * {@code long}, data moves in 1 MiB pieces), so files may exceed 2 GiB. F32 and BF16 are written and read;
 * BF16 is rounded to nearest even (relative error at most 2^-8).
 */
public final class Safetensors {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_HEADER = 100L << 20;
    /** Floats per transfer buffer. */
    public static final int CHUNK = 1 << 18;

    /** The element types: F32 exactly, or BF16. */
    public enum Dtype {
        F32(4), BF16(2);

        /** Bytes per element. */
        public final int bytes;

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

    private Safetensors() {
    }

    /**
     * One tensor of a file: its name, element type, shape and byte range {@code [begin, end)} within the data
     * section.
     */
    public record Entry(String name, Dtype dtype, long[] shape, long begin, long end) {

        /** An F32 tensor (the checkpoints' pieces). */
        public Entry(String name, long[] shape, long begin, long end) {
            this(name, Dtype.F32, shape, begin, end);
        }

        public long elements() {
            return (end - begin) / dtype.bytes;
        }
    }

    /** A parsed header; {@code dataStart} is the file offset of the data section. */
    public record Header(List<Entry> entries, Map<String, String> metadata, long dataStart) {
        public Map<String, Entry> byName() {
            Map<String, Entry> m = new LinkedHashMap<>();
            for (Entry e : entries) {
                m.put(e.name(), e);
            }
            return m;
        }
    }

    /** The header bytes (length prefix included, padded to 8 bytes) for entries laid out back to back. */
    public static byte[] header(List<Entry> entries, Map<String, String> metadata) throws IOException {
        ObjectNode h = JSON.createObjectNode();
        ObjectNode meta = h.putObject("__metadata__");
        new TreeMap<>(metadata).forEach(meta::put); // sorted: files must be byte-identical across JVMs
        for (Entry e : entries) {
            ObjectNode n = h.putObject(e.name());
            n.put("dtype", e.dtype().name());
            var shape = n.putArray("shape");
            for (long s : e.shape()) {
                shape.add(s);
            }
            n.putArray("data_offsets").add(e.begin()).add(e.end());
        }
        byte[] json = JSON.writeValueAsBytes(h);
        int padded = (json.length + 7) / 8 * 8;
        byte[] out = new byte[8 + padded];
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
        System.arraycopy(json, 0, out, 8, json.length);
        Arrays.fill(out, 8 + json.length, out.length, (byte) ' ');
        return out;
    }

    /** Reads and checks a header from the start of {@code in}; errors name the file and the offset. */
    public static Header readHeader(InputStream in, String file) throws IOException {
        DataInputStream din = new DataInputStream(in);
        byte[] lenBytes = new byte[8];
        readFully(din, lenBytes, file, 0);
        long n = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (n < 2 || n > MAX_HEADER) {
            throw new IOException(file + ": header length " + n + " at offset 0 is not plausible (corrupt file?)");
        }
        byte[] h = new byte[(int) n];
        readFully(din, h, file, 8);
        JsonNode root;
        try {
            root = JSON.readTree(new String(h, StandardCharsets.UTF_8).trim());
        } catch (IOException e) {
            throw new IOException(file + ": header at offset 8 is not valid JSON: " + e.getMessage(), e);
        }
        Map<String, String> meta = new TreeMap<>();
        List<Entry> entries = new ArrayList<>();
        var fields = root.fields();
        while (fields.hasNext()) {
            var f = fields.next();
            if (f.getKey().equals("__metadata__")) {
                f.getValue().fields().forEachRemaining(e -> meta.put(e.getKey(), e.getValue().asText()));
                continue;
            }
            JsonNode e = f.getValue();
            Dtype dtype;
            try {
                dtype = Dtype.valueOf(e.path("dtype").asText());
            } catch (IllegalArgumentException x) {
                throw new IOException(file + ": tensor " + f.getKey() + " has dtype " + e.path("dtype")
                        + ", expected F32 or BF16");
            }
            long[] shape = new long[e.path("shape").size()];
            long count = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = e.path("shape").get(i).asLong();
                count *= shape[i];
            }
            long b = e.path("data_offsets").path(0).asLong(-1), en = e.path("data_offsets").path(1).asLong(-1);
            if (b < 0 || en - b != dtype.bytes * count) {
                throw new IOException(file + ": tensor " + f.getKey() + " has data_offsets [" + b + ", " + en
                        + ") that do not hold its shape " + Arrays.toString(shape) + " in " + dtype);
            }
            entries.add(new Entry(f.getKey(), dtype, shape, b, en));
        }
        entries.sort(Comparator.comparingLong(Entry::begin));
        return new Header(List.copyOf(entries), meta, 8 + n);
    }

    /**
     * Writes one consolidated file: every tensor under its own name and shape (the HF names of the layout),
     * data streamed from {@code src} tensor by tensor.
     */
    public static void write(OutputStream out, List<TensorView> tensors, TensorSource src, Map<String, String> metadata)
            throws IOException {
        write(out, tensors, src, metadata, Dtype.F32);
    }

    /** The same with every tensor stored as {@code dtype}. */
    public static void write(OutputStream out, List<TensorView> tensors, TensorSource src, Map<String, String> metadata,
                             Dtype dtype) throws IOException {
        List<Entry> entries = new ArrayList<>();
        long pos = 0;
        for (TensorView t : tensors) {
            long bytes = dtype.bytes * t.size();
            entries.add(new Entry(t.name(), dtype, Arrays.stream(t.shape()).asLongStream().toArray(), pos, pos + bytes));
            pos += bytes;
        }
        out.write(header(entries, metadata));
        Transfer x = new Transfer();
        for (TensorView t : tensors) {
            x.copyOut(src, t, 0, t.size(), out, dtype);
        }
    }

    /**
     * Reads a consolidated file written for {@code tensors} into {@code sink}, in one pass over {@code in};
     * every tensor must be there with its shape, else the error names the file and the tensor (or the byte
     * offset where the file is short). Returns the file's metadata.
     */
    public static Map<String, String> read(InputStream in, String file, List<TensorView> tensors, TensorSink sink)
            throws IOException {
        Header h = readHeader(in, file);
        Map<String, Entry> byName = h.byName();
        Map<String, TensorView> wanted = new LinkedHashMap<>();
        for (TensorView t : tensors) {
            Entry e = byName.get(t.name());
            if (e == null) {
                throw new IOException(file + ": tensor " + t.name() + " is missing");
            }
            if (!Arrays.equals(e.shape(), Arrays.stream(t.shape()).asLongStream().toArray())) {
                throw new IOException(file + ": tensor " + t.name() + " has shape " + Arrays.toString(e.shape())
                        + ", the model expects " + Arrays.toString(t.shape()));
            }
            wanted.put(t.name(), t);
        }
        Transfer x = new Transfer();
        long pos = 0; // within the data section
        for (Entry e : h.entries()) {
            TensorView t = wanted.get(e.name());
            if (t == null) {
                continue;
            }
            if (e.begin() < pos) {
                throw new IOException(file + ": tensor " + e.name() + " overlaps the tensor before it");
            }
            skipFully(in, e.begin() - pos, file, h.dataStart() + pos);
            x.copyIn(in, file, h.dataStart() + e.begin(), t, 0, t.size(), sink, e.dtype());
            pos = e.end();
        }
        return h.metadata();
    }

    /**
     * Reads every tensor a file holds into {@code sink}, in one pass over {@code in}, each matched to the model's
     * tensor of that name by {@code lookup}; returns the names read. A tensor the model does not have, or of another
     * shape, is an error naming the file and the tensor; the model's tensors absent from the file are left alone (a
     * sharded HF checkpoint spreads them over files).
     */
    public static List<String> readPresent(InputStream in, String file, Map<String, TensorView> lookup, TensorSink sink,
                                           String modelDescription) throws IOException {
        Header h = readHeader(in, file);
        Transfer x = new Transfer();
        List<String> found = new ArrayList<>();
        long pos = 0;
        for (Entry e : h.entries()) {
            TensorView t = lookup.get(e.name());
            if (t == null) {
                throw new IOException(file + ": tensor " + e.name() + " is not part of " + modelDescription
                        + " (a different architecture?)");
            }
            if (!Arrays.equals(e.shape(), Arrays.stream(t.shape()).asLongStream().toArray())) {
                throw new IOException(file + ": tensor " + e.name() + " has shape " + Arrays.toString(e.shape())
                        + ", the model expects " + Arrays.toString(t.shape()));
            }
            if (e.begin() < pos) {
                throw new IOException(file + ": tensor " + e.name() + " overlaps the tensor before it");
            }
            skipFully(in, e.begin() - pos, file, h.dataStart() + pos);
            x.copyIn(in, file, h.dataStart() + e.begin(), t, 0, t.size(), sink, e.dtype());
            pos = e.end();
            found.add(e.name());
        }
        return found;
    }

    /** Buffers for moving floats between tensors and little-endian bytes, a chunk at a time. */
    public static final class Transfer {
        final float[] floats = new float[CHUNK];
        final ByteBuffer bytes = ByteBuffer.allocate(4 * CHUNK).order(ByteOrder.LITTLE_ENDIAN);

        /** Elements {@code [start, start + len)} of {@code t} from {@code src} to {@code out}, as F32. */
        public void copyOut(TensorSource src, TensorView t, long start, long len, OutputStream out) throws IOException {
            copyOut(src, t, start, len, out, Dtype.F32);
        }

        /** The same, stored as {@code dtype}. */
        public void copyOut(TensorSource src, TensorView t, long start, long len, OutputStream out, Dtype dtype)
                throws IOException {
            for (long done = 0; done < len; ) {
                int n = (int) Math.min(CHUNK, len - done);
                src.read(t, start + done, floats, 0, n);
                bytes.clear();
                if (dtype == Dtype.F32) {
                    bytes.asFloatBuffer().put(floats, 0, n);
                } else {
                    for (int i = 0; i < n; i++) {
                        bytes.putShort(Bf16.bits(floats[i]));
                    }
                }
                out.write(bytes.array(), 0, dtype.bytes * n);
                done += n;
            }
        }

        /** Elements {@code [start, start + len)} of {@code t}, F32, from {@code in} (at file offset {@code at}) to the sink. */
        public void copyIn(InputStream in, String file, long at, TensorView t, long start, long len, TensorSink sink)
                throws IOException {
            copyIn(in, file, at, t, start, len, sink, Dtype.F32);
        }

        /** The same for elements stored as {@code dtype}. */
        public void copyIn(InputStream in, String file, long at, TensorView t, long start, long len, TensorSink sink,
                           Dtype dtype) throws IOException {
            int w = dtype.bytes;
            for (long done = 0; done < len; ) {
                int n = (int) Math.min(CHUNK, len - done);
                int got = in.readNBytes(bytes.array(), 0, w * n);
                if (got < w * n) {
                    throw new IOException(file + ": tensor " + t.name() + " ends at offset " + (at + w * done + got)
                            + ", before its " + w * len + " bytes (truncated)");
                }
                bytes.clear();
                if (dtype == Dtype.F32) {
                    bytes.asFloatBuffer().get(floats, 0, n);
                } else {
                    for (int i = 0; i < n; i++) {
                        floats[i] = Bf16.value(bytes.getShort());
                    }
                }
                sink.write(t, start + done, floats, 0, n);
                done += n;
            }
        }
    }

    private static void skipFully(InputStream in, long n, String file, long at) throws IOException {
        for (long left = n; left > 0; ) {
            long k = in.skip(left);
            if (k <= 0) {
                if (in.read() < 0) {
                    throw new IOException(file + ": ends before offset " + (at + n) + " (truncated)");
                }
                k = 1;
            }
            left -= k;
        }
    }

    private static void readFully(DataInputStream in, byte[] b, String file, long offset) throws IOException {
        try {
            in.readFully(b);
        } catch (EOFException e) {
            throw new IOException(file + ": ends before offset " + (offset + b.length) + " (truncated)", e);
        }
    }
}
