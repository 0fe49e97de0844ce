package io.ouro.orchestrator.demo;

import java.util.SplittableRandom;

/**
 * The "Mano" task of looplm-spec §6: modular arithmetic over F_p (F_23 unless a modulus is given) with +, − and ×, as expression trees
 * written in prefix notation, with one answer token. A document is {@code "+ * 3 5 - 7 2 = 10"}: the
 * expression, {@code =}, and its value mod 23. Every document is a function of (seed, index) alone, so a
 * corpus is the same whatever the number of files or threads that write it.
 */
public final class Mano {

    /** The field's order unless one is given: the spec's F_23. */
    public static final int P = 23;

    private static final char[] OPS = {'+', '-', '*'};

    /** One expression: its prefix text (without {@code = answer}), its value, its number of operators. */
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
        if (minOps < 0 || maxOps < minOps) {
            throw new IllegalArgumentException("operators: expected 0 <= min <= max, got " + minOps + ".." + maxOps);
        }
        checkModulus(p);
        SplittableRandom r = new SplittableRandom(mix(seed * 0x9E3779B97F4A7C15L + index));
        int ops = minOps + r.nextInt(maxOps - minOps + 1);
        StringBuilder b = new StringBuilder();
        int value = tree(r, ops, b, p);
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
     * expression's top operator, and {@code guessAccuracy}, the accuracy of the best guess from that operator
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
        double[] split = new double[maxOps + 1]; // expected entropy of the subtree sizes of a k-operator tree
        for (int k = 1; k <= maxOps; k++) {
            double sum = 0;
            for (int j = 0; j < k; j++) {
                sum += split[j] + split[k - 1 - j];
            }
            split[k] = Math.log(k) + sum / k;
        }
        double format = 0;
        for (int n = minOps; n <= maxOps; n++) {
            format += n * Math.log(OPS.length) + (n + 1) * Math.log(p) + split[n];
        }
        format = format / (maxOps - minOps + 1) + Math.log(maxOps - minOps + 1);
        long[][] counts = new long[OPS.length + 1][p];
        for (int i = 0; i < samples; i++) {
            Expr e = at(0x5A3F1E, i, minOps, maxOps, p);
            int top = e.ops() == 0 ? OPS.length : "+-*".indexOf(e.prefix().charAt(0));
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
