package io.ouro.worker.model;

/**
 * bfloat16: the upper 16 bits of a float32, rounded to nearest even. Checkpoints may be written in it
 * ({@code hf.Safetensors}) and the stash may hold it ({@code StepOps#allocate}), so every backend rounds alike.
 */
public final class Bf16 {

    private Bf16() {
    }

    /** The bfloat16 bits of {@code f}, rounded to nearest even (NaN stays a quiet NaN). */
    public static short bits(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** The float32 value of bfloat16 bits. */
    public static float value(short b) {
        return Float.intBitsToFloat((b & 0xFFFF) << 16);
    }

    /** {@code f} as it reads back after a bfloat16 round trip. */
    public static float round(float f) {
        return value(bits(f));
    }

    /** The same for a double (the float64 twin of the reference ops): rounded to float, then to bfloat16. */
    public static double round(double f) {
        return round((float) f);
    }
}
