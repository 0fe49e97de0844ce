package io.ouro.worker.opencl;

import java.util.Arrays;

/**
 * The rows of a batch grouped by token id (a CSR index), for the embedding backward's launch of a work item per
 * (column, distinct token) (reduce.cl's {@code ouro_embed_bwd}): the host has the batch, so it sorts it once per
 * micro-batch when it uploads the token ids, and the index travels after them in the TOKENS buffer. For the ids
 * {@code tok[0, rows)}:
 * <ul>
 *   <li>at {@link #order}: the rows sorted by token and, within a token, ascending ({@code rows} ints);</li>
 *   <li>at {@link #starts}: where in that list each distinct token's rows begin, in token order, then the list's end
 *   ({@code distinct + 1} ints, at most {@code rows + 1}).</li>
 * </ul>
 * A token's rows in ascending order is the order the serial op adds them in, so the indexed op is bit-identical to it.
 */
public final class TokenIndex {

    private TokenIndex() {
    }

    /** Ints the index of {@code rows} token ids takes after them (in the memory plan). */
    public static int ints(int rows) {
        return 2 * rows + 1;
    }

    /** Where the rows sorted by token begin in the TOKENS buffer of {@code rows} ids. */
    static int order(int rows) {
        return rows;
    }

    /** Where the distinct tokens' first places in that list begin. */
    static int starts(int rows) {
        return 2 * rows;
    }

    /**
     * Writes the index of {@code tok[0, rows)} into {@code tok[rows, rows + ints(rows))} and returns the number of
     * distinct tokens; a negative id, which has no row of the table, is an error.
     */
    static int build(int[] tok, int rows) {
        long[] keys = new long[rows];
        for (int r = 0; r < rows; r++) {
            if (tok[r] < 0) {
                throw new IllegalArgumentException("token id " + tok[r] + " at row " + r
                        + ": the embedding has no row for a negative id");
            }
            keys[r] = (long) tok[r] << 32 | r;
        }
        Arrays.sort(keys);
        int order = order(rows), starts = starts(rows), distinct = 0;
        for (int i = 0; i < rows; i++) {
            tok[order + i] = (int) keys[i];
            if (i == 0 || keys[i] >>> 32 != keys[i - 1] >>> 32) {
                tok[starts + distinct++] = i;
            }
        }
        tok[starts + distinct] = rows;
        return distinct;
    }
}
