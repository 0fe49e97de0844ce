package io.ouro.orchestrator.demo;

import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Mano generator: well-formed prefix expressions and chains with the right answers, deterministic files. */
class ManoTest {

    @TempDir
    Path tmp;

    @Test
    void expressionsAreWellFormedAndTheirAnswersAreRight() {
        int[] opsSeen = new int[5];
        Set<Character> operators = new HashSet<>();
        for (long i = 0; i < 20_000; i++) {
            Mano.Expr e = Mano.at(3, i, 1, 4);
            assertEquals(Mano.evaluate(e.prefix()), e.answer(), e.document());
            String[] t = e.prefix().split(" ");
            int ops = 0;
            for (String s : t) {
                if (s.length() == 1 && "+-*".indexOf(s.charAt(0)) >= 0) {
                    ops++;
                    operators.add(s.charAt(0));
                } else {
                    int v = Integer.parseInt(s);
                    assertTrue(v >= 0 && v < Mano.P, "leaf in F_23: " + s);
                }
            }
            assertEquals(e.ops(), ops, e.prefix());
            assertEquals(2 * ops + 1, t.length, "a binary tree: one more leaf than operators");
            opsSeen[ops]++;
        }
        assertEquals(Set.of('+', '-', '*'), operators);
        for (int o = 1; o <= 4; o++) {
            assertTrue(opsSeen[o] > 4000, "operator counts are spread over 1..4: " + java.util.Arrays.toString(opsSeen));
        }
        assertEquals("+ * 3 5 - 7 2 = 20", new Mano.Expr("+ * 3 5 - 7 2", Mano.evaluate("+ * 3 5 - 7 2"), 3).document());
        assertEquals(22, Mano.evaluate("- 0 1"), "subtraction wraps around");
        assertEquals(1, Mano.evaluate("* 12 2"), "24 mod 23");
        assertEquals(Mano.at(3, 77, 1, 4), Mano.at(3, 77, 1, 4), "a function of (seed, index)");
        assertThrows(IllegalArgumentException.class, () -> Mano.evaluate("+ 1"));
        assertThrows(IllegalArgumentException.class, () -> Mano.evaluate("+ 1 23"));
    }

    @Test
    void theEntropyFloorIsTheInformationInAnExpression() {
        Mano.Floor one = Mano.floor(1, 1, 50_000);
        assertEquals(Math.log(3) + 2 * Math.log(23), one.format(), 1e-12, "an operator and two leaves");
        Mano.Floor two = Mano.floor(2, 2, 50_000);
        assertEquals(2 * Math.log(3) + 3 * Math.log(23) + Math.log(2), two.format(), 1e-12, "and where the subtree goes");
        Mano.Floor mixed = Mano.floor(1, 2, 50_000);
        assertEquals(Math.log(2) + (one.format() + two.format()) / 2, mixed.format(), 1e-12, "and how many operators");
        // multiplication makes 0 likelier than 1/23, so a guess from the operator beats chance a little
        assertTrue(one.guessAnswer() < Math.log(23) && one.guessAnswer() > Math.log(23) - 0.2, "" + one.guessAnswer());
        assertTrue(one.guessAccuracy() > 1.0 / 23 && one.guessAccuracy() < 0.08, "" + one.guessAccuracy());
    }

    @Test
    void aSmallerFieldAndBalancedHeldOutSets() {
        for (int i = 0; i < 2000; i++) {
            Mano.Expr e = Mano.at(5, i, 1, 3, 7);
            assertEquals(Mano.evaluate(e.prefix(), 7), e.answer(), e.document());
            for (String t : e.prefix().split(" ")) {
                assertTrue(!Character.isDigit(t.charAt(0)) || Integer.parseInt(t) < 7, "a leaf in F_7: " + e.prefix());
            }
        }
        assertEquals(5, Mano.evaluate("* 4 3", 7), "12 mod 7");
        assertEquals(6, Mano.evaluate("- 0 1", 7));
        for (int bad : new int[] {1, 8, 9, 1009}) {
            var ex = assertThrows(IllegalArgumentException.class, () -> Mano.at(1, 0, 1, 2, bad));
            assertTrue(ex.getMessage().contains("modulus") && ex.getMessage().contains(String.valueOf(bad)), ex.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> new SynthApp.Options("x", 10, 1, 1, 1, 2, 1, 8));
        // held-out: the same number per operator count, all of a smaller space (3 * 7^2 single operations)
        List<Mano.Expr> held = SynthApp.heldout(1, 1, 2, 400, 7);
        assertEquals(147, held.stream().filter(e -> e.ops() == 1).count(), "every single operation of F_7");
        assertEquals(200, held.stream().filter(e -> e.ops() == 2).count());
        assertEquals(held.size(), held.stream().map(Mano.Expr::prefix).distinct().count(), "distinct");
        assertEquals(held, SynthApp.heldout(1, 1, 2, 400, 7), "deterministic");
    }

    @Test
    void theCorpusIsDeterministicAndHeldOutExpressionsStayOutOfTraining() throws Exception {
        SynthApp.Options o = new SynthApp.Options(tmp.resolve("a").toUri().toString(), 5000, 300, 9, 1, 3, 3);
        SynthApp.Corpus c = SynthApp.write(o, new Configuration());
        SynthApp.write(new SynthApp.Options(tmp.resolve("b").toUri().toString(), 5000, 300, 9, 1, 3, 3),
                new Configuration());
        for (String f : List.of("train/part-00000.txt", "train/part-00001.txt", "train/part-00002.txt",
                "heldout/part-00000.txt")) {
            assertArrayEquals(Files.readAllBytes(tmp.resolve("a").resolve(f)), Files.readAllBytes(tmp.resolve("b").resolve(f)),
                    f + " is the same for the same seed");
        }
        Set<String> train = new HashSet<>();
        long lines = 0;
        for (int f = 0; f < 3; f++) {
            for (String line : Files.readAllLines(tmp.resolve("a/train/part-0000" + f + ".txt"))) {
                int eq = line.lastIndexOf(" = ");
                assertEquals(Mano.evaluate(line.substring(0, eq)), Integer.parseInt(line.substring(eq + 3)), line);
                train.add(line.substring(0, eq));
                lines++;
            }
        }
        assertEquals(5000, lines);
        assertEquals(5000, c.documents());
        List<String> held = Files.readAllLines(tmp.resolve("a/heldout/part-00000.txt"));
        assertEquals(300, held.size());
        assertEquals(300, new HashSet<>(held).size(), "held-out expressions are distinct");
        int multi = 0;
        for (String line : held) {
            String prefix = line.substring(0, line.lastIndexOf(" = "));
            if (prefix.split(" ").length > 3) {
                multi++;
                assertFalse(train.contains(prefix), "a held-out expression of 2+ operators is not trained on: " + prefix);
            }
        }
        assertTrue(multi > 150, "most held-out expressions have 2+ operators: " + multi);
        assertTrue(Files.readString(tmp.resolve("a/mano.json")).contains("\"documents\" : 5000"));
        assertFalse(Files.exists(tmp.resolve("a/train/.part-00000.txt.tmp")), "no temporary file is left");
        assertThrows(IllegalArgumentException.class, () -> new SynthApp.Options("x", 10, 1, 1, 3, 2, 1));
    }

    @Test
    void chainsAreCalculatorKeysComputedLeftToRight() throws Exception {
        int[] opsSeen = new int[4];
        for (long i = 0; i < 5000; i++) {
            Mano.Expr e = Mano.at(4, i, 1, 3, 7, Mano.Form.CHAIN);
            assertEquals(Mano.evaluateChain(e.prefix(), 7), e.answer(), e.document());
            assertTrue(e.prefix().matches("\\d [-+*] \\d( = [-+*] \\d)*"), "leaf, then (operator leaf) pairs: " + e.prefix());
            assertEquals(e, Mano.Expr.parse(e.document()), "the document parses back, its operators counted");
            assertEquals(3 * e.ops(), e.prefix().split(" ").length, "n + 1 leaves, n operators, n - 1 '='");
            opsSeen[e.ops()]++;
        }
        assertTrue(opsSeen[1] > 1400 && opsSeen[2] > 1400 && opsSeen[3] > 1400, java.util.Arrays.toString(opsSeen));
        // ((3 + 5) * 2) - 6 = 10 = 3 mod 7, by hand
        assertEquals(3, Mano.evaluateChain("3 + 5 = * 2 = - 6", 7));
        assertEquals(Mano.evaluateChain("3 + 5 = * 2", 7), Mano.evaluate("* + 3 5 2", 7), "a chain is a left-deep tree");
        assertEquals(Mano.at(4, 9, 1, 3, 7, Mano.Form.CHAIN), Mano.at(4, 9, 1, 3, 7, Mano.Form.CHAIN), "deterministic");
        assertThrows(IllegalArgumentException.class, () -> Mano.evaluateChain("3 + 5 * 2", 7), "'=' between operations");
        assertThrows(IllegalArgumentException.class, () -> Mano.evaluateChain("3 + 7", 7), "a leaf outside F_7");
        var bad = assertThrows(IllegalArgumentException.class, () -> Mano.Form.parse("infix"));
        assertTrue(bad.getMessage().contains("form") && bad.getMessage().contains("infix"), bad.getMessage());
        // one tree shape: no shape entropy; the baseline guesses from the last operator
        Mano.Floor two = Mano.floor(2, 2, 50_000, 7, Mano.Form.CHAIN);
        assertEquals(2 * Math.log(3) + 3 * Math.log(7), two.format(), 1e-12);
        assertTrue(two.guessAccuracy() > 1.0 / 7 && two.guessAccuracy() < 0.3, "" + two.guessAccuracy());
        // the corpus: chains, the held-out ones of 2+ operators kept out of training
        SynthApp.Options o = new SynthApp.Options(tmp.resolve("c").toUri().toString(), 3000, 200, 5, 1, 2, 1, 7,
                Mano.Form.CHAIN);
        SynthApp.write(o, new Configuration());
        Set<String> train = new HashSet<>();
        for (String line : Files.readAllLines(tmp.resolve("c/train/part-00000.txt"))) {
            Mano.Expr e = Mano.Expr.parse(line);
            assertEquals(Mano.evaluateChain(e.prefix(), 7), e.answer(), line);
            train.add(e.prefix());
        }
        for (String line : Files.readAllLines(tmp.resolve("c/heldout/part-00000.txt"))) {
            Mano.Expr e = Mano.Expr.parse(line);
            assertEquals(Mano.evaluateChain(e.prefix(), 7), e.answer(), line);
            assertTrue(e.ops() < 2 || !train.contains(e.prefix()), "held out: " + line);
        }
        assertTrue(Files.readString(tmp.resolve("c/mano.json")).contains("\"form\" : \"chain\""));
    }
}
