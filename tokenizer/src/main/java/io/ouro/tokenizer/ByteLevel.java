package io.ouro.tokenizer;

/**
 * GPT-2's byte-to-unicode table: each byte maps to one printable code point (printable Latin-1 bytes
 * to themselves, the others to U+0100 upwards), so that byte-level BPE vocabularies are strings.
 */
final class ByteLevel {

    static final char[] BYTE_TO_CHAR = new char[256];
    static final int[] CHAR_TO_BYTE = new int[0x200];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + n++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteLevel() {
    }

    /** The byte-level string of {@code bytes[off, off+len)}. */
    static String map(byte[] bytes, int off, int len) {
        char[] c = new char[len];
        for (int i = 0; i < len; i++) {
            c[i] = BYTE_TO_CHAR[bytes[off + i] & 0xFF];
        }
        return new String(c);
    }

    /** The bytes of a byte-level string, or null when it holds a character outside the table. */
    static byte[] unmap(String s) {
        byte[] b = new byte[s.length()];
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            int v = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (v < 0) {
                return null;
            }
            b[i] = (byte) v;
        }
        return b;
    }
}
