package io.ouro.orchestrator.demo;

import io.ouro.tokenizer.cli.Args;
import io.ouro.tokenizer.fs.HadoopFiles;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

/**
 * {@code ouro synth mano --out URI [--documents N] [--heldout N] [--seed S] [--min-ops A] [--max-ops B]
 * [--files K] [--modulus P] [--form prefix|chain]}: writes a Mano corpus over F_P (F_23 unless given) of prefix trees
 * or chains ({@link Mano.Form}; prefix unless given) to any Hadoop FileSystem: {@code train/part-NNNNN.txt}
 * (one document per line, K files), {@code heldout/part-00000.txt} (distinct expressions from other
 * streams, the same number of each number of operators: {@link #heldout}) and {@code mano.json} (the settings and counts). No held-out expression of two or more operators
 * occurs in the training files; single operations are the arithmetic table itself, which training covers.
 * Deterministic by seed; each file is written under a temporary name and renamed when complete.
 */
public final class SynthApp {

    /** What a corpus holds. */
    public record Corpus(String train, String heldout, long documents, long heldoutDocuments, long rejected,
                         long bytes) {
    }

    /** The generator's settings. */
    public record Options(String out, long documents, int heldout, long seed, int minOps, int maxOps, int files,
                          int modulus, Mano.Form form) {

        /** Over the spec's F_23. */
        public Options(String out, long documents, int heldout, long seed, int minOps, int maxOps, int files) {
            this(out, documents, heldout, seed, minOps, maxOps, files, Mano.P);
        }

        /** The spec's prefix trees. */
        public Options(String out, long documents, int heldout, long seed, int minOps, int maxOps, int files,
                       int modulus) {
            this(out, documents, heldout, seed, minOps, maxOps, files, modulus, Mano.Form.PREFIX);
        }

        public Options {
            if (form == null) {
                throw new IllegalArgumentException("--form: expected prefix or chain, got null");
            }
            try {
                Mano.checkModulus(modulus);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--" + e.getMessage());
            }
            if (documents < 1) {
                throw new IllegalArgumentException("--documents: expected at least 1, got " + documents);
            }
            if (heldout < 0) {
                throw new IllegalArgumentException("--heldout: expected 0 or more, got " + heldout);
            }
            if (minOps < 0 || maxOps < minOps) {
                throw new IllegalArgumentException("--min-ops/--max-ops: expected 0 <= min <= max, got "
                        + minOps + ".." + maxOps);
            }
            if (files < 1) {
                throw new IllegalArgumentException("--files: expected at least 1, got " + files);
            }
        }
    }

    private SynthApp() {
    }

    public static void main(String[] args) throws IOException {
        Args a = Args.orExit(args, USAGE, 1);
        Options o;
        try {
            if (!a.positional().equals(java.util.List.of("mano"))) {
                throw a.error("expected the generator: mano");
            }
            o = new Options(a.required("out"), a.longValue("documents", 100000), a.integer("heldout", 1000),
                    a.longValue("seed", 1), a.integer("min-ops", 1), a.integer("max-ops", 3), a.integer("files", 2),
                    a.integer("modulus", 23), Mano.Form.parse(a.get("form", "prefix")));
        } catch (IllegalArgumentException e) {
            System.err.println("synth mano: " + e.getMessage());
            System.exit(2);
            return;
        }
        long t0 = System.nanoTime();
        Corpus c = write(o, new Configuration());
        System.out.printf(Locale.ROOT, "synth mano: %d training documents (%.1f MB) in %s, %d held-out in %s;"
                        + " %d generated expressions skipped as held-out duplicates; %.1f s%n", c.documents(),
                c.bytes() / 1e6, c.train(), c.heldoutDocuments(), c.heldout(), c.rejected(),
                (System.nanoTime() - t0) / 1e9);
    }

    static final String USAGE = "ouro synth mano --out URI [--documents N] [--heldout N] [--seed S] [--min-ops A]"
            + " [--max-ops B] [--files K] [--modulus P] [--form prefix|chain]";

    /** The seed of the held-out stream: another stream than the training one, so the two sets differ. */
    static long heldoutSeed(long seed) {
        return seed ^ 0x4E1D_0C7AL;
    }

    /**
     * The held-out expressions: as many distinct ones of each number of operators from {@code minOps} to
     * {@code maxOps} ({@code total} split evenly, the first counts taking the remainder), so that every number of
     * operators weighs the same, as in the training stream and the baseline ({@link Mano#floor}); a count whose
     * expression space is smaller (the single operations: 3 p^2) holds all of it. Each count has its own stream.
     */
    public static java.util.List<Mano.Expr> heldout(long seed, int minOps, int maxOps, int total, int p) {
        return heldout(seed, minOps, maxOps, total, p, Mano.Form.PREFIX);
    }

    /** The same in the given form. */
    public static java.util.List<Mano.Expr> heldout(long seed, int minOps, int maxOps, int total, int p,
                                                    Mano.Form form) {
        java.util.List<Mano.Expr> out = new java.util.ArrayList<>();
        int counts = maxOps - minOps + 1;
        for (int ops = minOps; ops <= maxOps; ops++) {
            int want = total / counts + (ops - minOps < total % counts ? 1 : 0);
            Set<String> seen = new HashSet<>();
            for (long i = 0; seen.size() < want && i < 100L * want + 1000; i++) {
                Mano.Expr e = Mano.at(heldoutSeed(seed) + ops, i, ops, ops, p, form);
                if (seen.add(e.prefix())) {
                    out.add(e);
                }
            }
        }
        return out;
    }

    /** Writes the corpus and returns what it holds. */
    public static Corpus write(Options o, Configuration conf) throws IOException {
        Path root = new Path(o.out());
        FileSystem fs = root.getFileSystem(conf);
        Path trainDir = new Path(root, "train"), heldDir = new Path(root, "heldout");
        fs.mkdirs(trainDir);
        fs.mkdirs(heldDir);
        Set<String> held = new HashSet<>();
        long index = 0;
        long bytes = 0;
        try (BufferedWriter w = open(fs, heldDir, "part-00000.txt")) {
            for (Mano.Expr e : heldout(o.seed(), o.minOps(), o.maxOps(), o.heldout(), o.modulus(), o.form())) {
                held.add(e.prefix());
                w.write(e.document());
                w.newLine();
            }
        }
        commit(fs, heldDir, "part-00000.txt");
        index = 0;
        long rejected = 0;
        for (int f = 0; f < o.files(); f++) {
            long n = o.documents() * (f + 1) / o.files() - o.documents() * f / o.files();
            String name = String.format(Locale.ROOT, "part-%05d.txt", f);
            try (BufferedWriter w = open(fs, trainDir, name)) {
                for (long k = 0; k < n; ) {
                    Mano.Expr e = Mano.at(o.seed(), index++, o.minOps(), o.maxOps(), o.modulus(), o.form());
                    if (e.ops() >= 2 && held.contains(e.prefix())) {
                        rejected++;
                        if (rejected > 100 * o.documents()) {
                            throw new IllegalStateException("the held-out set covers the expression space of "
                                    + o.minOps() + ".." + o.maxOps() + " operators; lower --heldout");
                        }
                        continue;
                    }
                    String d = e.document();
                    w.write(d);
                    w.newLine();
                    bytes += d.length() + 1;
                    k++;
                }
            }
            commit(fs, trainDir, name);
        }
        ObjectNode meta = new ObjectMapper().createObjectNode();
        meta.put("task", "mano").put("form", o.form().name().toLowerCase(Locale.ROOT)).put("modulus", o.modulus()).put("seed", o.seed()).put("min_ops", o.minOps())
                .put("max_ops", o.maxOps()).put("documents", o.documents()).put("heldout", held.size())
                .put("heldout_duplicates_skipped", rejected).put("train_bytes", bytes).put("files", o.files());
        HadoopFiles.write(fs, new Path(root, ".mano.json.tmp"), new Path(root, "mano.json"), true,
                out -> out.write(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(meta)));
        return new Corpus(trainDir.toString(), heldDir.toString(), o.documents(), held.size(), rejected, bytes);
    }

    private static BufferedWriter open(FileSystem fs, Path dir, String name) throws IOException {
        return new BufferedWriter(new OutputStreamWriter(fs.create(new Path(dir, "." + name + ".tmp"), true),
                StandardCharsets.UTF_8), 1 << 16);
    }

    private static void commit(FileSystem fs, Path dir, String name) throws IOException {
        Path fin = new Path(dir, name);
        fs.delete(fin, false);
        HadoopFiles.rename(fs, new Path(dir, "." + name + ".tmp"), fin);
    }
}
