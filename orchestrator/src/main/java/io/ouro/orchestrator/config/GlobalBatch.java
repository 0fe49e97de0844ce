package io.ouro.orchestrator.config;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A stage's batch over all workers ({@code global_batch}, {@code global_batch_start}): {@code "<n> tokens"} or
 * {@code "<n> sequences"}, n an integer with an optional binary suffix K, M or G (2^10, 2^20, 2^30), as batch sizes
 * are quoted in papers: {@code 8M tokens} is 8,388,608 tokens, 2,048 sequences of 4,096. The same recipe then runs
 * at any W that divides its sequences: each worker takes {@code sequences / W} of them.
 */
record GlobalBatch(long amount, boolean tokens) {

    private static final Pattern FORM = Pattern.compile("([0-9][0-9_]*)\\s*([KMG]?)\\s+(tokens|sequences)");

    static GlobalBatch parse(Node n, String key) {
        String v = n.string(key, null).trim();
        Matcher m = FORM.matcher(v);
        if (!m.matches()) {
            throw n.error(key, "expected '<n> tokens' or '<n> sequences' (n an integer, optionally with K, M or G:"
                    + " 2^10, 2^20, 2^30), got '" + v + "'");
        }
        int shift = switch (m.group(2)) {
            case "K" -> 10;
            case "M" -> 20;
            case "G" -> 30;
            default -> 0;
        };
        String digits = m.group(1).replace("_", "");
        long x = digits.length() > 12 ? -1 : Long.parseLong(digits);
        if (x < 1 || x > (1L << 40) >> shift) {
            throw n.error(key, "expected between 1 and 2^40 " + m.group(3) + ", got '" + v + "'");
        }
        return new GlobalBatch(x << shift, m.group(3).equals("tokens"));
    }

    /** Sequences of {@code seqLen} tokens in this batch; tokens that are not whole sequences are an error. */
    long sequences(Node n, String key, int seqLen) {
        if (!tokens) {
            return amount;
        }
        if (amount % seqLen != 0) {
            throw n.error(key, text() + " is not a whole number of sequences of seq_len " + seqLen);
        }
        return amount / seqLen;
    }

    /** As a config would write it, with the largest binary suffix that is exact. */
    String text() {
        return human(amount) + (tokens ? " tokens" : " sequences");
    }

    static String human(long x) {
        for (int shift = 30; shift >= 10; shift -= 10) {
            if (x >= 1L << shift && x % (1L << shift) == 0) {
                return (x >> shift) + (shift == 30 ? "G" : shift == 20 ? "M" : "K");
            }
        }
        return Long.toString(x);
    }

    /**
     * The worker counts a stage of {@code sequences} (the gcd of its global batches: start and end of a ramp) runs
     * at, nearest {@code workers} first when there are many: each a divisor of {@code sequences}.
     */
    static String validWorkers(long sequences, int workers) {
        List<Long> d = new ArrayList<>();
        for (long i = 1; i * i <= sequences; i++) {
            if (sequences % i == 0) {
                d.add(i);
                if (i != sequences / i) {
                    d.add(sequences / i);
                }
            }
        }
        d.sort(null);
        if (d.size() <= 16) {
            return join(d);
        }
        // the eight nearest to the W asked for, on a log scale
        List<Long> near = new ArrayList<>(d);
        near.sort((a, b) -> Double.compare(Math.abs(Math.log((double) a / workers)), Math.abs(Math.log((double) b / workers))));
        near = new ArrayList<>(near.subList(0, 8));
        near.sort(null);
        return join(near) + String.format(Locale.ROOT, " (%d in all: the divisors of %d)", d.size(), sequences);
    }

    private static String join(List<Long> d) {
        StringBuilder b = new StringBuilder();
        for (long x : d) {
            b.append(b.length() > 0 ? ", " : "").append(x);
        }
        return b.toString();
    }
}
