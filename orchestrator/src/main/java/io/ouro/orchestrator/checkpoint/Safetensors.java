package io.ouro.orchestrator.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.TensorView;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;

/**
 * The safetensors format (the HF ecosystem's weights file): an 8-byte little-endian header length, a
 * JSON header mapping each tensor name to dtype, shape and byte range, then the raw little-endian data.
 * Tensors are written under the layout's HF Ouro names, with an optional name suffix (the optimizer's
 * moments go to their own file under the same names).
 */
public final class Safetensors {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_HEADER = 100L << 20;

    private Safetensors() {
    }

    public static void write(OutputStream out, ParamLayout layout, float[] flat, Map<String, String> metadata)
            throws IOException {
        ObjectNode header = JSON.createObjectNode();
        ObjectNode meta = header.putObject("__metadata__");
        new java.util.TreeMap<>(metadata).forEach(meta::put);
        long pos = 0;
        for (TensorView t : layout.tensors()) {
            ObjectNode e = header.putObject(t.name());
            e.put("dtype", "F32");
            var shape = e.putArray("shape");
            for (int s : t.shape()) {
                shape.add(s);
            }
            var off = e.putArray("data_offsets");
            off.add(pos);
            off.add(pos + 4 * t.size());
            pos += 4 * t.size();
        }
        byte[] h = JSON.writeValueAsBytes(header);
        int padded = (h.length + 7) / 8 * 8;
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
        out.write(len.array());
        out.write(h);
        for (int i = h.length; i < padded; i++) {
            out.write(' ');
        }
        ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        for (TensorView t : layout.tensors()) {
            for (long i = t.offset(); i < t.offset() + t.size(); i++) {
                if (!buf.hasRemaining()) {
                    out.write(buf.array(), 0, buf.position());
                    buf.clear();
                }
                buf.putFloat(flat[(int) i]);
            }
        }
        out.write(buf.array(), 0, buf.position());
    }

    /** What a file held: the flat buffer in the layout's order, and the metadata. */
    public record Loaded(float[] flat, Map<String, String> metadata) {
    }

    /**
     * Reads a file written for {@code layout}; every tensor must be there with its shape and dtype F32,
     * else the error names the file and the tensor (or the byte offset where the file is short).
     */
    public static Loaded read(InputStream in, String file, ParamLayout layout) throws IOException {
        DataInputStream din = new DataInputStream(in);
        byte[] lenBytes = new byte[8];
        readFully(din, lenBytes, file, 0);
        long n = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (n < 2 || n > MAX_HEADER) {
            throw new IOException(file + ": header length " + n + " at offset 0 is not plausible (corrupt file?)");
        }
        byte[] h = new byte[(int) n];
        readFully(din, h, file, 8);
        JsonNode header;
        try {
            header = JSON.readTree(new String(h, StandardCharsets.UTF_8).trim());
        } catch (IOException e) {
            throw new IOException(file + ": header at offset 8 is not valid JSON: " + e.getMessage(), e);
        }
        java.util.TreeMap<String, String> meta = new java.util.TreeMap<>();
        JsonNode m = header.get("__metadata__");
        if (m != null) {
            m.fields().forEachRemaining(e -> meta.put(e.getKey(), e.getValue().asText()));
        }
        long dataStart = 8 + n;
        byte[] data = din.readAllBytes();
        float[] flat = new float[layout.arraySize()];
        ByteBuffer bb = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        for (TensorView t : layout.tensors()) {
            JsonNode e = header.get(t.name());
            if (e == null) {
                throw new IOException(file + ": tensor " + t.name() + " is missing");
            }
            if (!"F32".equals(e.path("dtype").asText())) {
                throw new IOException(file + ": tensor " + t.name() + " has dtype " + e.path("dtype") + ", expected F32");
            }
            int[] shape = new int[e.path("shape").size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = e.path("shape").get(i).asInt();
            }
            if (!Arrays.equals(shape, t.shape())) {
                throw new IOException(file + ": tensor " + t.name() + " has shape " + Arrays.toString(shape)
                        + ", the model expects " + Arrays.toString(t.shape()));
            }
            long b = e.path("data_offsets").get(0).asLong(), en = e.path("data_offsets").get(1).asLong();
            if (en - b != 4 * t.size() || en > data.length || b < 0) {
                throw new IOException(file + ": tensor " + t.name() + " bytes [" + (dataStart + b) + ", "
                        + (dataStart + en) + ") are outside the file's " + (dataStart + data.length) + " bytes");
            }
            bb.position((int) b);
            for (long i = 0; i < t.size(); i++) {
                flat[(int) (t.offset() + i)] = bb.getFloat();
            }
        }
        return new Loaded(flat, meta);
    }

    private static void readFully(DataInputStream in, byte[] b, String file, long offset) throws IOException {
        try {
            in.readFully(b);
        } catch (java.io.EOFException e) {
            throw new IOException(file + ": ends before offset " + (offset + b.length) + " (truncated)", e);
        }
    }
}
