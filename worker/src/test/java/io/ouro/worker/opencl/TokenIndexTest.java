package io.ouro.worker.opencl;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The embedding backward's index by token, built on the host (no device needed). */
class TokenIndexTest {

    @Test
    void theRowsAreGroupedByTokenInRowOrder() {
        int[] ids = {5, 2, 5, 0, 2, 5, 7};
        int rows = ids.length;
        int[] tok = Arrays.copyOf(ids, rows + TokenIndex.ints(rows));
        assertEquals(4, TokenIndex.build(tok, rows), "tokens 0, 2, 5 and 7");
        assertArrayEquals(ids, Arrays.copyOf(tok, rows), "the ids stay where they were");
        assertArrayEquals(new int[]{3, 1, 4, 0, 2, 5, 6}, Arrays.copyOfRange(tok, TokenIndex.order(rows),
                TokenIndex.order(rows) + rows), "rows by token, each token's rows ascending");
        assertArrayEquals(new int[]{0, 1, 3, 6, 7}, Arrays.copyOfRange(tok, TokenIndex.starts(rows),
                TokenIndex.starts(rows) + 5), "where each token's rows begin, then the end");
    }

    @Test
    void oneTokenOnEveryRowIsOneGroup() {
        int rows = 5;
        int[] tok = new int[rows + TokenIndex.ints(rows)];
        Arrays.fill(tok, 0, rows, 9);
        assertEquals(1, TokenIndex.build(tok, rows));
        assertArrayEquals(new int[]{0, 1, 2, 3, 4, 0, 5}, Arrays.copyOfRange(tok, rows, rows + 7));
    }

    @Test
    void aNegativeIdIsAnError() {
        int[] tok = {3, -1, 0, 0, 0, 0, 0, 0, 0, 0};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TokenIndex.build(tok, 3));
        assertTrue(e.getMessage().contains("token id -1 at row 1"), e.getMessage());
    }
}
