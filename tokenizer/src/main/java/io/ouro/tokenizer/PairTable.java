package io.ouro.tokenizer;

import java.util.Arrays;

/** Open-addressing map from a pair of token ids to (merge rank, merged id), packed into longs. */
final class PairTable {

    private long[] keys;
    private long[] values;
    private int size;
    private int mask;

    PairTable(int expected) {
        int cap = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
        keys = new long[cap];
        values = new long[cap];
        Arrays.fill(keys, -1L);
        mask = cap - 1;
    }

    static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private static int hash(long k) {
        long h = k * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29));
    }

    /** Adds the pair unless present with a lower rank (the first merge of a pair wins). */
    void put(int left, int right, int rank, int merged) {
        if (size * 2 >= keys.length) {
            grow();
        }
        long k = key(left, right);
        int i = hash(k) & mask;
        while (keys[i] != -1L) {
            if (keys[i] == k) {
                if ((int) (values[i] >>> 32) > rank) {
                    values[i] = ((long) rank << 32) | (merged & 0xFFFFFFFFL);
                }
                return;
            }
            i = (i + 1) & mask;
        }
        keys[i] = k;
        values[i] = ((long) rank << 32) | (merged & 0xFFFFFFFFL);
        size++;
    }

    /** (rank << 32 | merged id), or -1 when the pair does not merge. */
    long get(int left, int right) {
        long k = key(left, right);
        int i = hash(k) & mask;
        while (true) {
            long kk = keys[i];
            if (kk == k) {
                return values[i];
            }
            if (kk == -1L) {
                return -1L;
            }
            i = (i + 1) & mask;
        }
    }

    private void grow() {
        long[] ok = keys, ov = values;
        keys = new long[ok.length * 2];
        values = new long[ok.length * 2];
        Arrays.fill(keys, -1L);
        mask = keys.length - 1;
        size = 0;
        for (int i = 0; i < ok.length; i++) {
            if (ok[i] != -1L) {
                put((int) (ok[i] >>> 32), (int) ok[i], (int) (ov[i] >>> 32), (int) ov[i]);
            }
        }
    }
}
