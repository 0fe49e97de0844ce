package io.ouro.worker.data;

import io.ouro.worker.model.TokenBatch;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The aligned sampling mode: one document per row from its start, padding without targets, optionally the answer only. */
class AlignedSamplingTest {

    static final int EOS = 0;

    /**
     * Documents 1..n: document d holds 1 + d % 7 tokens, the first one 1000 + d (its identity), the others 5000 + d * 10
     * + i; EOS between them and after the last; an empty document (two EOS) after every 10th.
     */
    static int[] corpus(int n, List<int[]> docs) {
        List<Integer> t = new ArrayList<>();
        for (int d = 1; d <= n; d++) {
            int[] doc = new int[1 + d % 7];
            doc[0] = 1000 + d;
            for (int i = 1; i < doc.length; i++) {
                doc[i] = 5000 + d * 10 + i;
            }
            docs.add(doc);
            for (int x : doc) {
                t.add(x);
            }
            t.add(EOS);
            if (d % 10 == 0) {
                t.add(EOS);
            }
        }
        return t.stream().mapToInt(Integer::intValue).toArray();
    }

    static Sampler sampler(int[] tokens, int seqLen, boolean answer) {
        return new Sampler(List.of(new ArrayTokenSource(tokens, "docs", EOS)), List.of("docs"), new double[] {1},
                seqLen, 7, 0, false, new Sampler.Layout(true, answer));
    }

    @Test
    void theIndexFindsEveryNonEmptyDocument() {
        List<int[]> docs = new ArrayList<>();
        int[] t = corpus(50, docs);
        DocumentIndex ix = DocumentIndex.build(new ArrayTokenSource(t, "docs", EOS));
        assertEquals(50, ix.documents(), "empty documents are left out");
        for (int i = 0; i < 50; i++) {
            assertEquals(docs.get(i).length, ix.length(i));
            assertEquals(docs.get(i)[0], t[(int) ix.start(i)]);
        }
        // no EOS after the last document: it still counts
        DocumentIndex open = DocumentIndex.build(new ArrayTokenSource(new int[] {EOS, 4, 5, EOS, 6, 7, 8}, "x", EOS));
        assertEquals(2, open.documents());
        assertEquals(3, open.length(1));
        var e = assertThrows(IllegalArgumentException.class,
                () -> DocumentIndex.build(new ArrayTokenSource(new int[] {1, 2, 3}, "no-eos corpus")));
        assertTrue(e.getMessage().contains("no-eos corpus") && e.getMessage().contains("aligned"), e.getMessage());
    }

    @Test
    void eachRowIsOneDocumentFromItsStartAndPaddingHasNoTarget() {
        List<int[]> docs = new ArrayList<>();
        int seq = 6;
        Sampler s = sampler(corpus(70, docs), seq, false);
        assertEquals(70, s.samples(), "a sample per document");
        Set<Integer> seen = new HashSet<>();
        for (int step = 0; step < 7; step++) { // one epoch: 7 steps of 10
            Sampler.Batch b = s.batch(step, (long) step * 10, 10, 0, 1);
            for (int r = 0; r < 10; r++) {
                int o = r * seq;
                assertEquals(EOS, b.tokens()[o], "a row starts at a document boundary");
                int id = b.tokens()[o + 1] - 1000;
                assertTrue(seen.add(id), "document " + id + " twice in an epoch");
                int[] doc = docs.get(id - 1);
                int[] window = new int[seq + 1];
                Arrays.fill(window, EOS);
                System.arraycopy(doc, 0, window, 1, Math.min(doc.length, seq));
                for (int p = 0; p < seq; p++) {
                    assertEquals(window[p], b.tokens()[o + p], "doc " + id + " position " + p);
                    int want = p < Math.min(doc.length + 1, seq) ? window[p + 1] : TokenBatch.NO_TARGET;
                    assertEquals(want, b.targets()[o + p], "doc " + id + " target " + p);
                }
            }
        }
        assertEquals(70, seen.size());
    }

    @Test
    void theAnswerModeHasOneTargetPerRowTheDocumentsLastToken() {
        List<int[]> docs = new ArrayList<>();
        int seq = 6;
        Sampler s = sampler(corpus(70, docs), seq, true);
        Sampler.Batch b = s.batch(0, 0, 70, 0, 1);
        for (int r = 0; r < 70; r++) {
            int o = r * seq;
            int[] doc = docs.get(b.tokens()[o + 1] - 1000 - 1);
            int targets = 0;
            for (int p = 0; p < seq; p++) {
                if (b.targets()[o + p] != TokenBatch.NO_TARGET) {
                    targets++;
                    assertEquals(doc.length - 1, p, "the position before the last token predicts it");
                    assertEquals(doc[doc.length - 1], b.targets()[o + p]);
                }
            }
            assertEquals(doc.length <= seq ? 1 : 0, targets, "a document longer than the row has no target");
        }
        assertThrows(IllegalArgumentException.class, () -> new Sampler.Layout(false, true),
                "the answer needs aligned rows");
    }

    @Test
    void ranksSplitAlignedBatchesExactlyAndAFreshSamplerResumesExactly() {
        List<int[]> docs = new ArrayList<>();
        int[] t = corpus(37, docs);
        for (boolean answer : new boolean[] {false, true}) {
            Sampler s = sampler(t, 8, answer);
            for (long step = 0; step < 9; step++) { // crosses epochs (37 documents, 9 per step)
                Sampler.Batch whole = s.batch(step, step * 9, 9, 0, 1);
                for (int w = 2; w <= 4; w++) {
                    int[] tok = new int[0], tgt = new int[0];
                    for (int r = 0; r < w; r++) {
                        Sampler.Batch part = s.batch(step, step * 9, 9, r, w);
                        tok = concat(tok, part.tokens());
                        tgt = concat(tgt, part.targets());
                    }
                    assertArrayEquals(whole.tokens(), tok, "W=" + w + " step " + step);
                    assertArrayEquals(whole.targets(), tgt, "W=" + w + " step " + step);
                }
                Sampler fresh = sampler(t, 8, answer); // a resumed run builds its sampler anew
                assertArrayEquals(whole.tokens(), fresh.batch(step, step * 9, 9, 0, 1).tokens());
                assertArrayEquals(whole.targets(), fresh.batch(step, step * 9, 9, 0, 1).targets());
            }
        }
    }

    static int[] concat(int[] a, int[] b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
