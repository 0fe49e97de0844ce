package io.ouro.orchestrator.demo;

import java.util.SplittableRandom;

/**
 * The "Mano" task of looplm-spec §6: modular arithmetic over F_p (F_23 unless a modulus is given) with +, − and ×, as expression trees
 * written in prefix notation, with one answer token. A document is {@code "+ * 3 5 - 7 2 = 10"}: the
 * expression, {@code =}, and its value mod 23; or, in the chain form ({@link Form#CHAIN}), a left-deep tree as a
 * calculator's keys, {@code "3 + 5 = * 2 = 16"}. Every document is a function of (seed, index) alone, so a
 * corpus is the same whatever the number of files or threads that write it.
 */
public final class Mano {

    /** The field's order unless one is given: the spec's F_23. */
    public static final int P = 23;

    private static final char[] OPS = {'+', '-', '*'};

    /**
     * How an expression is shaped and written. {@code PREFIX}: the spec's random trees in prefix notation
     * ({@code "+ * 3 5 - 6 2"}). {@code CHAIN}: left-deep trees (each operator applies to the value so far and one
     * new leaf) written as a pocket calculator's keys, read and computed left to right: {@code "3 + 5 = * 2 = - 6"}
     * is ((3 + 5) × 2) − 6, and its document ends {@code "= 3"} over F_7. Every {@code =} closes one operation whose
     * operands sit at the same places before it (the value so far at -3, the operator at -2, the new leaf at -1),
     * so each composition step is the same local computation, and n operators need n of them in sequence.
     */
    public enum Form {
        PREFIX, CHAIN;

        /** The form of its name ({@code prefix} or {@code chain}), naming the bad value otherwise. */
        public static Form parse(String name) {
            for (Form f : values()) {
                if (f.name().equalsIgnoreCase(name)) {
                    return f;
                }
            }
            throw new IllegalArgumentException("form: expected prefix or chain, got '" + name + "'");
        }
    }

    /** One expression: its text (without {@code = answer}; prefix or chain form), its value, its number of operators. */
    public record Expr(String prefix, int answer, int ops) {

        /** The document as the corpus holds it. */
        public String document() {
            return prefix + " = " + answer;
        }

        /** The expression of a document line, the inverse of {@link #document()}. */
        public static Expr parse(String document) {
            int eq = document.lastIndexOf(" = ");
            String prefix = document.substring(0, eq);
            int ops = 0;
            for (String t : prefix.split(" ")) {
                ops += t.length() == 1 && "+-*".contains(t) ? 1 : 0;
            }
            return new Expr(prefix, Integer.parseInt(document.substring(eq + 3).trim()), ops);
        }
    }

    private Mano() {
    }

    /** The expression of document {@code index} of the stream {@code seed}, with minOps..maxOps operators. */
    public static Expr at(long seed, long index, int minOps, int maxOps) {
        return at(seed, index, minOps, maxOps, P);
    }

    /** The same over F_p: {@code p} a prime from 2 to 997. */
    public static Expr at(long seed, long index, int minOps, int maxOps, int p) {
        return at(seed, index, minOps, maxOps, p, Form.PREFIX);
    }

    /** The same in the given form (the same draws make a prefix tree or a chain). */
    public static Expr at(long seed, long index, int minOps, int maxOps, int p, Form form) {
        if (minOps < 0 || maxOps < minOps) {
            throw new IllegalArgumentException("operators: expected 0 <= min <= max, got " + minOps + ".." + maxOps);
        }
        checkModulus(p);
        SplittableRandom r = new SplittableRandom(mix(seed * 0x9E3779B97F4A7C15L + index));
        int ops = minOps + r.nextInt(maxOps - minOps + 1);
        StringBuilder b = new StringBuilder();
        int value = form == Form.CHAIN ? chain(r, ops, b, p) : tree(r, ops, b, p);
        return new Expr(b.toString(), value, ops);
    }

    /** Checks that {@code p} is a prime from 2 to 997 (a field, with short numerals), naming it otherwise. */
    public static int checkModulus(int p) {
        boolean prime = p >= 2 && p <= 997;
        for (int d = 2; prime && d * d <= p; d++) {
            prime = p % d != 0;
        }
        if (!prime) {
            throw new IllegalArgumentException("modulus: expected a prime from 2 to 997 (the field F_p), got " + p);
        }
        return p;
    }

    // writes a random tree with n operators in prefix form into b and returns its value mod p
    private static int tree(SplittableRandom r, int n, StringBuilder b, int p) {
        if (b.length() > 0) {
            b.append(' ');
        }
        if (n == 0) {
            int leaf = r.nextInt(p);
            b.append(leaf);
            return leaf;
        }
        char op = OPS[r.nextInt(OPS.length)];
        b.append(op);
        int left = r.nextInt(n);
        int a = tree(r, left, b, p);
        int c = tree(r, n - 1 - left, b, p);
        return apply(op, a, c, p);
    }

    // writes a chain of n operators as calculator keys ("a op b = op c = ...", without the last "=") into b and
    // returns its value mod p
    private static int chain(SplittableRandom r, int n, StringBuilder b, int p) {
        int value = r.nextInt(p);
        b.append(value);
        for (int i = 0; i < n; i++) {
            char op = OPS[r.nextInt(OPS.length)];
            int leaf = r.nextInt(p);
            b.append(i > 0 ? " = " : " ").append(op).append(' ').append(leaf);
            value = apply(op, value, leaf, p);
        }
        return value;
    }

    static int apply(char op, int a, int c, int p) {
        return switch (op) {
            case '+' -> (a + c) % p;
            case '-' -> Math.floorMod(a - c, p);
            case '*' -> (a * c) % p;
            default -> throw new IllegalArgumentException("unknown operator " + op);
        };
    }

    /** Evaluates a prefix expression over F_23 (tokens separated by single spaces); an independent check. */
    public static int evaluate(String prefix) {
        return evaluate(prefix, P);
    }

    /** The same over F_p. */
    public static int evaluate(String prefix, int p) {
        String[] t = prefix.trim().split(" ");
        int[] pos = {0};
        int v = eval(t, pos, p);
        if (pos[0] != t.length) {
            throw new IllegalArgumentException("trailing tokens in '" + prefix + "' after position " + pos[0]);
        }
        return v;
    }

    /**
     * Evaluates a chain's calculator keys over F_p ({@code "3 + 5 = * 2"}: a leaf, then operator-leaf pairs
     * separated by {@code =}); an independent check.
     */
    public static int evaluateChain(String keys, int p) {
        String[] t = keys.trim().split(" ");
        int value = leaf(t[0], p);
        int i = 1;
        while (i < t.length) {
            if (i > 1) {
                if (!t[i].equals("=")) {
                    throw new IllegalArgumentException("expected '=' at position " + i + " of '" + keys + "'");
                }
                i++;
            }
            if (i + 1 >= t.length || t[i].length() != 1 || "+-*".indexOf(t[i].charAt(0)) < 0) {
                throw new IllegalArgumentException("expected an operator and a leaf at position " + i + " of '"
                        + keys + "'");
            }
            value = apply(t[i].charAt(0), value, leaf(t[i + 1], p), p);
            i += 2;
        }
        return value;
    }

    private static int leaf(String s, int p) {
        int v = Integer.parseInt(s);
        if (v < 0 || v >= p) {
            throw new IllegalArgumentException("leaf " + v + " is not in F_" + p);
        }
        return v;
    }

    /** Evaluates an expression of the given form over F_p. */
    public static int evaluate(String text, int p, Form form) {
        return form == Form.CHAIN ? evaluateChain(text, p) : evaluate(text, p);
    }

    private static int eval(String[] t, int[] pos, int p) {
        if (pos[0] >= t.length) {
            throw new IllegalArgumentException("expression ends early");
        }
        String s = t[pos[0]++];
        if (s.length() == 1 && "+-*".indexOf(s.charAt(0)) >= 0) {
            int a = eval(t, pos, p);
            int c = eval(t, pos, p);
            return apply(s.charAt(0), a, c, p);
        }
        int v = Integer.parseInt(s);
        if (v < 0 || v >= p) {
            throw new IllegalArgumentException("leaf " + v + " is not in F_" + p);
        }
        return v;
    }

    /**
     * What no model can beat on this corpus, in nats per document: {@code format}, the entropy of an
     * expression (operator count, operators, tree shapes, leaves; everything but the answer, which an exact
     * model predicts with certainty), {@code guessAnswer}, the entropy of the answer given only the
     * expression's top operator (the first in prefix form, the last in a chain), and {@code guessAccuracy}, the
     * accuracy of the best guess from that operator
     * (what a model that has not learned the arithmetic can reach). The last two are estimated from
     * {@code samples} expressions.
     */
    public record Floor(double format, double guessAnswer, double guessAccuracy) {
    }

    public static Floor floor(int minOps, int maxOps, int samples) {
        return floor(minOps, maxOps, samples, P);
    }

    /** The same over F_p. */
    public static Floor floor(int minOps, int maxOps, int samples, int p) {
        return floor(minOps, maxOps, samples, p, Form.PREFIX);
    }

    /** The same in the given form (a chain has one tree shape: no shape entropy). */
    public static Floor floor(int minOps, int maxOps, int samples, int p, Form form) {
        double[] split = new double[maxOps + 1]; // expected entropy of the subtree sizes of a k-operator tree
        for (int k = 1; k <= maxOps; k++) {
            double sum = 0;
            for (int j = 0; j < k; j++) {
                sum += split[j] + split[k - 1 - j];
            }
            split[k] = form == Form.CHAIN ? 0 : Math.log(k) + sum / k;
        }
        double format = 0;
        for (int n = minOps; n <= maxOps; n++) {
            format += n * Math.log(OPS.length) + (n + 1) * Math.log(p) + split[n];
        }
        format = format / (maxOps - minOps + 1) + Math.log(maxOps - minOps + 1);
        long[][] counts = new long[OPS.length + 1][p];
        for (int i = 0; i < samples; i++) {
            Expr e = at(0x5A3F1E, i, minOps, maxOps, p, form);
            String text = e.prefix();
            int top = e.ops() == 0 ? OPS.length
                    : "+-*".indexOf(form == Form.CHAIN ? text.charAt(text.lastIndexOf(' ') - 1) : text.charAt(0));
            counts[top][e.answer()]++;
        }
        double h = 0, best = 0;
        for (long[] row : counts) {
            long total = 0, max = 0;
            for (long c : row) {
                total += c;
                max = Math.max(max, c);
            }
            for (long c : row) {
                if (c > 0) {
                    h -= (double) c / samples * Math.log((double) c / total);
                }
            }
            best += (double) max / samples;
        }
        return new Floor(format, h, best);
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
