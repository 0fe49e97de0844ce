package io.ouro.orchestrator.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ouro.tokenizer.cli.Args;
import io.ouro.orchestrator.hf.ModelSource;
import io.ouro.orchestrator.train.ManifestSource;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.backend.EvalForward;
import io.ouro.worker.data.TokenSource;
import io.ouro.worker.infer.ExitPolicy;
import io.ouro.worker.model.LoopConfig;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

/**
 * {@code ouro eval}: per-loop-step cross-entropy and perplexity of a model on token manifests or text files, as a Spark
 * job. The manifests' streams (and the text files, tokenized on the driver: each document, a run of lines ended by an
 * empty line or with {@code --text-docs line} each line, after an EOS as in the packed training stream) are cut into windows of seq-len + 1 tokens (as training
 * reads them); the windows are spread over partitions, each partition runs a forward-only model on the backend
 * {@code --device} names ({@link EvalForward}: the Java ops or an OpenCL device, no gradients, no optimizer state) and
 * returns only sums. Besides CE per step: the mean exit distribution, the CE when each token exits by the gate's distribution
 * (its expected CE under p), and the CE when it exits by Q-exit at each q. With {@code --tasks} it also runs the
 * {@link TaskScorer} on a JSONL task file (on the driver).
 */
public final class EvalApp {

    static final String USAGE = "ouro eval (--model DIR | --config FILE [--checkpoint DIR]) [--tokenizer FILE]"
            + " [--data URI[,URI...]] [--text URI[,URI...] [--text-docs paragraph|line]] [--tasks FILE] [--seq-len N] [--batch B] [--max-windows N]"
            + " [--q Q[,Q...]] [--partitions P] [--master URL] [--device java|cpu|gpu|opencl:<i>] [--json FILE]"
            + " [--predictions FILE.jsonl]";

    /**
     * Figures over {@code tokens} predicted tokens: per step the mean CE and the mean exit probability; the expected CE
     * under the exit distribution; per q the CE at the Q-exit step and the mean (1-based) exit step.
     */
    public record Perplexity(long windows, long tokens, double[] stepCe, double[] meanExit, double expectedCe,
                             double[] q, double[] qCe, double[] qExitStep) {
    }

    private EvalApp() {
    }

    public static void main(String[] args) throws IOException {
        Args a = Args.orExit(args, USAGE);
        Configuration conf = new Configuration();
        ModelSource.Loaded m = ModelSource.load(a.get("model", null), a.get("config", null), a.get("checkpoint", null), conf);
        String data = a.get("data", null), text = a.get("text", null), tasks = a.get("tasks", null);
        if (data == null && text == null && tasks == null) {
            throw new IllegalArgumentException("--data URI[,URI...], --text URI[,URI...] or --tasks FILE is required"
                    + "\nusage: " + USAGE);
        }
        String device = a.get("device", "java");
        double[] qs = Arrays.stream(a.get("q", "0.5,0.9").split(",")).mapToDouble(Double::parseDouble).toArray();
        for (double q : qs) {
            ExitPolicy.qExit(q); // checks the range, naming the value
        }
        System.out.println("model " + m.origin() + " (" + m.config() + ")");
        ObjectNode json = new ObjectMapper().createObjectNode();
        json.put("model", m.origin());
        json.put("device", device);
        if (data != null || text != null) {
            List<int[]> texts = new ArrayList<>();
            String docs = a.get("text-docs", "paragraph");
            if (!docs.equals("paragraph") && !docs.equals("line")) {
                throw new IllegalArgumentException("--text-docs: expected paragraph or line, got '" + docs + "'");
            }
            if (text != null) {
                BpeTokenizer tok = ModelSource.tokenizer(a.get("tokenizer", null), a.get("model", null), conf);
                for (String uri : text.split(",")) {
                    texts.add(tokenizeText(uri, readText(uri, conf), tok, m.config().vocab(), docs.equals("line")));
                }
            }
            SparkConf sc = new SparkConf().setAppName("ouro eval").setMaster(a.get("master", "local[*]"));
            Perplexity p;
            try (JavaSparkContext jsc = new JavaSparkContext(sc)) {
                jsc.setLogLevel("WARN");
                p = perplexity(jsc, device, m.config(), m.params(), data == null ? List.of() : List.of(data.split(",")),
                        texts, Integer.parseInt(a.get("seq-len", "256")), Integer.parseInt(a.get("batch", "8")),
                        Long.parseLong(a.get("max-windows", "1024")), qs,
                        Integer.parseInt(a.get("partitions", String.valueOf(jsc.defaultParallelism()))));
            }
            System.out.print(table(p));
            json.set("perplexity", toJson(p));
        }
        if (tasks != null) {
            BpeTokenizer tok = ModelSource.tokenizer(a.get("tokenizer", null), a.get("model", null), conf);
            TaskScorer.Tasks t = TaskScorer.read(Paths.get(tasks));
            for (String b : t.bad()) {
                System.err.println("skipped " + b);
            }
            TaskScorer.Result r = TaskScorer.score(tok, m.config(), m.params(), t.items(),
                    Integer.parseInt(a.get("batch", "8")), qs, device);
            System.out.print(table(r, t.bad().size()));
            json.set("tasks", toJson(r, t.bad()));
            if (a.get("predictions", null) != null) {
                StringBuilder lines = new StringBuilder();
                for (TaskScorer.Scored s : r.scored()) {
                    lines.append(new ObjectMapper().writeValueAsString(prediction(s, r.q()))).append('\n');
                }
                Files.writeString(Paths.get(a.get("predictions", null)), lines);
            }
        }
        if (a.get("json", null) != null) {
            Files.writeString(Paths.get(a.get("json", null)), new ObjectMapper().writerWithDefaultPrettyPrinter()
                    .writeValueAsString(json) + "\n");
        }
    }

    /** The perplexity figures of {@code manifests} on the Java backend (see the full form). */
    public static Perplexity perplexity(JavaSparkContext jsc, LoopConfig cfg, float[] params, List<String> manifests,
                                        int seqLen, int batch, long maxWindows, double[] qs, int partitions) {
        return perplexity(jsc, "java", cfg, params, manifests, List.of(), seqLen, batch, maxWindows, qs, partitions);
    }

    /**
     * The perplexity figures of {@code manifests} and the token streams {@code texts} (tokenized text files), at most
     * {@code maxWindows} windows evenly spread over them, each partition's forward on the backend {@code device} names.
     */
    public static Perplexity perplexity(JavaSparkContext jsc, String device, LoopConfig cfg, float[] params,
                                        List<String> manifests, List<int[]> texts, int seqLen, int batch,
                                        long maxWindows, double[] qs, int partitions) {
        if (seqLen < 1 || batch < 1 || maxWindows < 1 || partitions < 1) {
            throw new IllegalArgumentException("--seq-len, --batch, --max-windows and --partitions must be at least 1;"
                    + " got " + seqLen + ", " + batch + ", " + maxWindows + ", " + partitions);
        }
        io.ouro.worker.model.DeviceSpec.parse(device); // names a bad spec before any job starts
        // sources: the manifests, then the text streams
        long[] counts = new long[manifests.size() + texts.size()];
        long total = 0;
        for (int i = 0; i < counts.length; i++) {
            if (i < manifests.size()) {
                try (TokenSource src = ManifestSource.open(manifests.get(i), cfg.vocab())) {
                    counts[i] = Math.max(0, (src.tokens() - 1) / seqLen);
                } catch (Exception e) {
                    throw e instanceof RuntimeException re ? re : new IllegalStateException(manifests.get(i) + ": " + e, e);
                }
            } else {
                counts[i] = Math.max(0, (texts.get(i - manifests.size()).length - 1) / seqLen);
            }
            total += counts[i];
        }
        if (total == 0) {
            throw new IllegalArgumentException((texts.isEmpty() ? manifests : "the data and text given") + ": fewer"
                    + " than seq-len + 1 = " + (seqLen + 1) + " tokens");
        }
        long take = Math.min(total, maxWindows);
        List<long[]> windows = new ArrayList<>();
        for (long i = 0; i < take; i++) {
            long g = i * total / take; // evenly spread: the global window index
            int mi = 0;
            while (g >= counts[mi]) {
                g -= counts[mi++];
            }
            windows.add(new long[] {mi, g * seqLen});
        }
        Broadcast<float[]> weights = jsc.broadcast(params);
        Broadcast<int[][]> streams = jsc.broadcast(texts.toArray(new int[0][]));
        double[] sums = jsc.parallelize(windows, partitions)
                .mapPartitions(partition(device, cfg, weights, streams, List.copyOf(manifests), seqLen, batch, qs))
                .reduce(EvalApp::add);
        weights.destroy();
        streams.destroy();
        return figures(sums, take, cfg.steps(), qs);
    }

    // one partition's sums: tokens, CE per step, exit probability per step, expected CE, per q the CE and exit step
    private static FlatMapFunction<Iterator<long[]>, double[]> partition(String device, LoopConfig cfg,
                                                                         Broadcast<float[]> weights,
                                                                         Broadcast<int[][]> texts,
                                                                         List<String> manifests, int seqLen, int batch,
                                                                         double[] qs) {
        return it -> {
            int steps = cfg.steps();
            double[] sums = new double[1 + 2 * steps + 1 + 2 * qs.length];
            if (!it.hasNext()) {
                return List.of(sums).iterator();
            }
            TokenSource[] open = new TokenSource[manifests.size()];
            List<long[]> part = new ArrayList<>();
            try (EvalForward model = new EvalForward(device, cfg, weights.value(), batch, seqLen)) {
                while (it.hasNext()) {
                    part.add(it.next());
                    if (part.size() == batch || !it.hasNext()) {
                        int[] tokens = new int[part.size() * seqLen], targets = new int[tokens.length];
                        int[] buf = new int[seqLen + 1];
                        for (int b = 0; b < part.size(); b++) {
                            int mi = (int) part.get(b)[0];
                            if (mi >= manifests.size()) {
                                System.arraycopy(texts.value()[mi - manifests.size()], (int) part.get(b)[1], buf, 0,
                                        seqLen + 1);
                            } else {
                                if (open[mi] == null) {
                                    open[mi] = ManifestSource.open(manifests.get(mi), cfg.vocab());
                                }
                                open[mi].read(part.get(b)[1], buf, 0, seqLen + 1);
                            }
                            System.arraycopy(buf, 0, tokens, b * seqLen, seqLen);
                            System.arraycopy(buf, 1, targets, b * seqLen, seqLen);
                        }
                        accumulate(model.forward(tokens, targets, part.size()), steps, tokens.length, qs, sums);
                        part.clear();
                    }
                }
            } finally {
                for (TokenSource s : open) {
                    if (s != null) {
                        s.close();
                    }
                }
            }
            return List.of(sums).iterator();
        };
    }

    /**
     * Adds one batch's sums ({@code n} rows, every one with a target) into {@code sums}, laid out as {@link #figures}
     * reads.
     */
    static void accumulate(EvalForward.Output out, int steps, int n, double[] qs, double[] sums) {
        float[] ce = out.ce(), lam = out.lambda();
        ExitPolicy[] policies = Arrays.stream(qs).mapToObj(ExitPolicy::qExit).toArray(ExitPolicy[]::new);
        double[] p = new double[steps];
        int exp = 1 + 2 * steps;
        for (int row = 0; row < n; row++) {
            sums[0]++;
            ExitStats.distribution(lam, n, row, p);
            for (int t = 0; t < steps; t++) {
                sums[1 + t] += ce[t * n + row];
                sums[1 + steps + t] += p[t];
                sums[exp] += p[t] * ce[t * n + row];
            }
            for (int k = 0; k < qs.length; k++) {
                int t = ExitStats.exitStep(lam, n, row, steps, policies[k]);
                sums[exp + 1 + k] += ce[t * n + row];
                sums[exp + 1 + qs.length + k] += t + 1;
            }
        }
    }

    /** The whole text file at {@code uri} (any Hadoop filesystem), as UTF-8. */
    static String readText(String uri, Configuration conf) throws IOException {
        org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(uri);
        org.apache.hadoop.fs.FileSystem fs = path.getFileSystem(conf);
        if (!fs.exists(path)) {
            throw new IllegalArgumentException("--text: " + uri + " does not exist");
        }
        try (java.io.InputStream in = fs.open(path)) {
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        }
    }

    /**
     * The token stream of a text file: each document (a run of lines ended by an empty line or the end of the file; with
     * {@code perLine} each non-empty line) after an EOS, as documents are packed for training. An id outside the
     * model's vocabulary is an error naming the file.
     */
    public static int[] tokenizeText(String name, String text, io.ouro.tokenizer.TextTokenizer tok, int vocab,
                                     boolean perLine) {
        if (tok.eosId() < 0) {
            throw new IllegalArgumentException("the tokenizer has no EOS token; documents cannot be separated");
        }
        List<int[]> docs = new ArrayList<>();
        int total = 0;
        StringBuilder doc = new StringBuilder();
        String[] lines = text.split("\r?\n", -1);
        for (int i = 0; i <= lines.length; i++) {
            boolean end = i == lines.length || lines[i].isBlank();
            if (!end && perLine) {
                doc.append(lines[i]);
                end = true;
            }
            if (!end) {
                doc.append(doc.length() > 0 ? "\n" : "").append(lines[i]);
                continue;
            }
            if (doc.length() > 0) {
                int[] ids = tok.encode(doc.toString());
                docs.add(ids);
                total += ids.length + 1;
                doc.setLength(0);
            }
        }
        int[] out = new int[total];
        int at = 0;
        for (int[] ids : docs) {
            out[at++] = tok.eosId();
            for (int id : ids) {
                if (id < 0 || id >= vocab) {
                    throw new IllegalArgumentException("--text " + name + ": token id " + id + " is outside the model's"
                            + " vocabulary of " + vocab + " (is the tokenizer the model's?)");
                }
                out[at++] = id;
            }
        }
        if (tok.eosId() >= vocab) {
            throw new IllegalArgumentException("--text " + name + ": the tokenizer's EOS id " + tok.eosId()
                    + " is outside the model's vocabulary of " + vocab);
        }
        return out;
    }

    private static double[] add(double[] a, double[] b) {
        double[] s = a.clone();
        for (int i = 0; i < s.length; i++) {
            s[i] += b[i];
        }
        return s;
    }

    static Perplexity figures(double[] sums, long windows, int steps, double[] qs) {
        double tok = sums[0];
        double[] ce = new double[steps], exit = new double[steps], qCe = new double[qs.length], qStep = new double[qs.length];
        for (int t = 0; t < steps; t++) {
            ce[t] = sums[1 + t] / tok;
            exit[t] = sums[1 + steps + t] / tok;
        }
        int exp = 1 + 2 * steps;
        for (int k = 0; k < qs.length; k++) {
            qCe[k] = sums[exp + 1 + k] / tok;
            qStep[k] = sums[exp + 1 + qs.length + k] / tok;
        }
        return new Perplexity(windows, (long) tok, ce, exit, sums[exp] / tok, qs.clone(), qCe, qStep);
    }

    static String table(Perplexity p) {
        StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "%d windows, %d predicted tokens%n", p.windows(),
                p.tokens()));
        b.append(String.format(Locale.ROOT, "%-22s %9s %11s %10s%n", "exit", "CE", "perplexity", "exit p / step"));
        for (int t = 0; t < p.stepCe().length; t++) {
            b.append(String.format(Locale.ROOT, "%-22s %9.4f %11.3f %10.4f%n", "step " + (t + 1), p.stepCe()[t],
                    Math.exp(p.stepCe()[t]), p.meanExit()[t]));
        }
        double meanStep = 0;
        for (int t = 0; t < p.meanExit().length; t++) {
            meanStep += (t + 1) * p.meanExit()[t];
        }
        b.append(String.format(Locale.ROOT, "%-22s %9.4f %11.3f %10.2f%n", "gate (expected CE)", p.expectedCe(),
                Math.exp(p.expectedCe()), meanStep));
        for (int k = 0; k < p.q().length; k++) {
            b.append(String.format(Locale.ROOT, "%-22s %9.4f %11.3f %10.2f%n", "Q-exit q=" + p.q()[k], p.qCe()[k],
                    Math.exp(p.qCe()[k]), p.qExitStep()[k]));
        }
        return b.toString();
    }

    static String table(TaskScorer.Result r, int bad) {
        StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "%d tasks (%d malformed lines skipped)%n",
                r.items(), bad));
        b.append(String.format(Locale.ROOT, "%-22s %9s %11s %10s%n", "exit", "accuracy", "answer NLL", "exit step"));
        for (int t = 0; t < r.accuracy().length; t++) {
            b.append(String.format(Locale.ROOT, "%-22s %9.4f %11.4f %10d%n", "step " + (t + 1), r.accuracy()[t],
                    r.answerNll()[t], t + 1));
        }
        b.append(String.format(Locale.ROOT, "%-22s %9.4f %11s %10.2f%n", "gate (expected)", r.gateAccuracy(), "",
                r.meanExitStep()));
        for (int k = 0; k < r.q().length; k++) {
            b.append(String.format(Locale.ROOT, "%-22s %9.4f %11s %10.2f%n", "Q-exit q=" + r.q()[k], r.qAccuracy()[k],
                    "", r.qMeanExitStep()[k]));
        }
        return b.toString();
    }

    static ObjectNode toJson(Perplexity p) {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("windows", p.windows()).put("tokens", p.tokens());
        array(o, "step_ce", p.stepCe());
        array(o, "step_perplexity", Arrays.stream(p.stepCe()).map(Math::exp).toArray());
        array(o, "mean_exit", p.meanExit());
        o.put("expected_ce", p.expectedCe()).put("expected_perplexity", Math.exp(p.expectedCe()));
        array(o, "q", p.q());
        array(o, "q_ce", p.qCe());
        array(o, "q_perplexity", Arrays.stream(p.qCe()).map(Math::exp).toArray());
        array(o, "q_mean_exit_step", p.qExitStep());
        return o;
    }

    static ObjectNode toJson(TaskScorer.Result r, List<String> bad) {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("items", r.items());
        array(o, "accuracy", r.accuracy());
        array(o, "answer_nll", r.answerNll());
        array(o, "mean_exit", r.meanExit());
        o.put("mean_exit_step", r.meanExitStep()).put("gate_accuracy", r.gateAccuracy());
        array(o, "q", r.q());
        array(o, "q_accuracy", r.qAccuracy());
        array(o, "q_mean_exit_step", r.qMeanExitStep());
        ArrayNode b = o.putArray("malformed_lines");
        bad.forEach(b::add);
        return o;
    }

    /**
     * One task item's line of {@code --predictions}: its line in the task file, prompt and answer, and per loop step
     * the prediction (text, and for a generated item the greedy ids), whether it is right and the answer's NLL; the
     * exit distribution at the answer, the gate's score, and per q whether Q-exit is right and its mean exit step.
     */
    static ObjectNode prediction(TaskScorer.Scored s, double[] qs) {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("line", s.item().line()).put("prompt", s.item().prompt()).put("answer", s.item().answer());
        ArrayNode pred = o.putArray("predicted"), correct = o.putArray("correct");
        for (int t = 0; t < s.predicted().length; t++) {
            pred.add(s.predicted()[t]);
            correct.add(s.correct()[t]);
        }
        if (s.predictedIds() != null) {
            ArrayNode ids = o.putArray("predicted_ids");
            for (int[] step : s.predictedIds()) {
                ArrayNode a = ids.addArray();
                for (int id : step) {
                    a.add(id);
                }
            }
        }
        array(o, "answer_nll", s.answerNll());
        array(o, "exit", s.exit());
        o.put("gate_correct", s.gateCorrect());
        array(o, "q", qs);
        ArrayNode qc = o.putArray("q_correct");
        for (boolean b : s.qCorrect()) {
            qc.add(b);
        }
        array(o, "q_exit_step", s.qExitStep());
        return o;
    }

    private static void array(ObjectNode o, String name, double[] v) {
        ArrayNode a = o.putArray(name);
        for (double x : v) {
            a.add(x);
        }
    }
}
