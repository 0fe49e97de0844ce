package io.ouro.worker.comm;

import java.util.Locale;

/**
 * How a call's values travel between ranks. {@code FP32}: the float32 bits, exact. {@code BF16}: each value sent is
 * rounded to bfloat16 ({@link io.ouro.worker.model.Bf16}, nearest even) and packed in 2 bytes, half the bytes; the
 * receiver widens it to float32 and adds in float32. See {@code worker/COMM.md} for where the rounding happens.
 */
public enum WireDtype {
    FP32(1, Float.BYTES),
    BF16(2, Short.BYTES);

    /** The code in the handshake. */
    final int code;
    /** Bytes per value on the wire. */
    final int bytes;

    WireDtype(int code, int bytes) {
        this.code = code;
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    /** The name in configs: {@code fp32} or {@code bf16}. */
    public String yamlName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** {@code fp32} or {@code bf16}; anything else is an {@link IllegalArgumentException}. */
    public static WireDtype parse(String name) {
        for (WireDtype d : values()) {
            if (d.yamlName().equals(name)) {
                return d;
            }
        }
        throw new IllegalArgumentException("expected fp32 or bf16, got '" + name + "'");
    }

    static String nameOf(int code) {
        for (WireDtype d : values()) {
            if (d.code == code) {
                return d.yamlName();
            }
        }
        return "unknown (code " + code + ")";
    }
}
