package io.ouro.orchestrator.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ouro.tokenizer.TextTokenizer;
import io.ouro.worker.infer.ExitPolicy;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.backend.EvalForward;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Exact-match task scoring per loop step. Each item is {@code {"prompt": …, "answer": …}}, optionally with
 * {@code "choices": [...]} (multiple choice, the answer being one of them). The prompt is fed after an EOS (documents
 * start after one in the packed training stream) and followed by the answer's tokens (teacher forcing), in one batched
 * forward on the Java or an OpenCL backend ({@link EvalForward}).
 *
 * <p>Step t's logits at a position depend only on steps ≤ t of the earlier positions, so step t of the forward is
 * exactly a model that runs t steps on every token: an item is right at step t (= static exit at step t) when step t's
 * arg-max equals the answer token at every answer position, which is exactly when greedy decoding at step t produces
 * the answer. A multiple-choice item is right when the answer has the highest log-likelihood of its tokens among the
 * choices. Under Q-exit each answer token takes its logits from its own exit step (the first whose exit CDF reaches q,
 * looplm-spec §5) while the tokens before it have run every step, as in a prefill. When exiting as the gate's
 * distribution says, a generated item counts with the probability that every token is right (each token exiting
 * independently), a multiple-choice item by its expected log-likelihood.
 */
public final class TaskScorer {

    /** One task: its 1-based line in the file, and choices empty unless multiple choice. */
    public record Item(int line, String prompt, String answer, List<String> choices) {
    }

    /** A task file: the items read and, for each line that is not one, "file:line: why". */
    public record Tasks(List<Item> items, List<String> bad) {
    }

    /**
     * One item's outcome; arrays are per loop step, or per threshold q for {@code qCorrect} and {@code qExitStep};
     * {@code predictedIds} per step the greedy ids of a generated item (null for a multiple-choice item).
     */
    public record Scored(Item item, boolean[] correct, double[] answerNll, String[] predicted, int[][] predictedIds,
                         double[] exit, double gateCorrect, boolean[] qCorrect, double[] qExitStep) {
    }

    /**
     * The figures over all items: accuracy and the answer's negative log-likelihood per step, the mean exit
     * distribution at the answer tokens and its mean (1-based) exit step, the accuracy when exiting as the gate says,
     * and per q the Q-exit accuracy and mean exit step.
     */
    public record Result(int items, double[] accuracy, double[] answerNll, double[] meanExit, double meanExitStep,
                         double gateAccuracy, double[] q, double[] qAccuracy, double[] qMeanExitStep,
                         List<Scored> scored) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private TaskScorer() {
    }

    /** Reads a JSONL task file; a malformed line is reported in {@link Tasks#bad()}, not thrown. */
    public static Tasks read(Path file) throws IOException {
        return parse(file.toString(), Files.readAllLines(file, StandardCharsets.UTF_8));
    }

    public static Tasks parse(String file, List<String> lines) {
        List<Item> items = new ArrayList<>();
        List<String> bad = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.isBlank()) {
                continue;
            }
            try {
                items.add(item(i + 1, line));
            } catch (IllegalArgumentException e) {
                bad.add(file + ":" + (i + 1) + ": " + e.getMessage());
            }
        }
        return new Tasks(items, bad);
    }

    private static Item item(int line, String text) {
        JsonNode n;
        try {
            n = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not JSON: " + e.getOriginalMessage());
        }
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException("expected a JSON object with \"prompt\" and \"answer\"");
        }
        String prompt = text(n, "prompt", false);
        String answer = text(n, "answer", true);
        List<String> choices = new ArrayList<>();
        if (n.has("choices")) {
            JsonNode c = n.get("choices");
            if (!c.isArray() || c.size() < 2) {
                throw new IllegalArgumentException("\"choices\": expected an array of at least two strings");
            }
            for (int j = 0; j < c.size(); j++) {
                if (!c.get(j).isTextual() || c.get(j).asText().isEmpty()) {
                    throw new IllegalArgumentException("\"choices\"[" + j + "]: expected a non-empty string");
                }
                choices.add(c.get(j).asText());
            }
            if (!choices.contains(answer)) {
                throw new IllegalArgumentException("\"answer\" " + JSON.valueToTree(answer) + " is not one of \"choices\"");
            }
        }
        return new Item(line, prompt, answer, List.copyOf(choices));
    }

    private static String text(JsonNode n, String field, boolean nonEmpty) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException("\"" + field + "\": expected a string");
        }
        if (nonEmpty && v.asText().isEmpty()) {
            throw new IllegalArgumentException("\"" + field + "\": expected a non-empty string");
        }
        return v.asText();
    }

    // one sequence to score: an item's prompt and one continuation (the answer, or one choice)
    private record Row(int item, int[] input, int first, int[] cont) {
    }

    // a row's outcome: per step the continuation's log-likelihood, whether every token was the arg-max, the arg-maxes
    private record RowOut(double[] logp, boolean[] ok, int[][] pred, double[] exit, double gateOk, double gateLogp,
                          double[] qLogp, boolean[] qOk, double[] qExitStep) {
    }

    /** Scores {@code items} on the model, {@code batch} sequences per forward, with Q-exit at each of {@code qs}. */
    public static Result score(TextTokenizer tok, LoopConfig cfg, float[] params, List<Item> items, int batch,
                               double[] qs) {
        return score(tok, cfg, params, items, batch, qs, "java");
    }

    /**
     * The same on the backend {@code device} names ({@link EvalForward}: the Java ops or an OpenCL device, forward
     * only), every batch padded to the longest sequence of all items.
     */
    public static Result score(TextTokenizer tok, LoopConfig cfg, float[] params, List<Item> items, int batch,
                               double[] qs, String device) {
        if (items.isEmpty()) {
            throw new IllegalArgumentException("no tasks to score");
        }
        if (batch < 1) {
            throw new IllegalArgumentException("batch: expected at least 1 sequence, got " + batch);
        }
        int eos = tok.eosId();
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            Item it = items.get(i);
            int[] prompt = tok.encode(it.prompt());
            for (String c : it.choices().isEmpty() ? List.of(it.answer()) : it.choices()) {
                int[] cont = tok.encode(c);
                if (cont.length == 0) {
                    throw new IllegalArgumentException("line " + it.line() + ": '" + c + "' encodes to no tokens");
                }
                int[] in = new int[prompt.length + cont.length];
                in[0] = eos;
                System.arraycopy(prompt, 0, in, 1, prompt.length);
                System.arraycopy(cont, 0, in, 1 + prompt.length, cont.length - 1);
                rows.add(new Row(i, in, prompt.length, cont));
            }
        }
        int seqLen = rows.stream().mapToInt(r -> r.input().length).max().orElse(1);
        RowOut[] outs = new RowOut[rows.size()];
        try (EvalForward model = new EvalForward(device, cfg, params, Math.min(batch, rows.size()), seqLen, true)) {
            for (int r0 = 0; r0 < rows.size(); r0 += batch) {
                List<Row> part = rows.subList(r0, Math.min(rows.size(), r0 + batch));
                RowOut[] o = forward(model, cfg, part, seqLen, eos, qs);
                System.arraycopy(o, 0, outs, r0, o.length);
            }
        }
        return aggregate(tok, cfg.steps(), items, rows, outs, qs);
    }

    private static RowOut[] forward(EvalForward model, LoopConfig cfg, List<Row> part, int seqLen, int eos,
                                    double[] qs) {
        int b = part.size(), n = b * seqLen, steps = cfg.steps(), vocab = cfg.vocab();
        int[] tokens = new int[n], targets = new int[n];
        Arrays.fill(tokens, eos); // padding after a sequence: causal attention keeps it out of the sequence's rows
        Arrays.fill(targets, -1);
        for (int i = 0; i < b; i++) {
            Row r = part.get(i);
            System.arraycopy(r.input(), 0, tokens, i * seqLen, r.input().length);
            for (int j = 0; j < r.cont().length; j++) {
                targets[i * seqLen + r.first() + j] = r.cont()[j];
            }
        }
        EvalForward.Output fwd = model.forward(tokens, targets, b);
        float[] ce = fwd.ce();
        float[] lam = fwd.lambda();
        float[][] logits = new float[steps][];
        for (int t = 0; t < steps; t++) {
            logits[t] = model.logits(t);
        }
        ExitPolicy[] policies = Arrays.stream(qs).mapToObj(ExitPolicy::qExit).toArray(ExitPolicy[]::new);
        RowOut[] out = new RowOut[b];
        double[] p = new double[steps];
        for (int i = 0; i < b; i++) {
            Row r = part.get(i);
            int len = r.cont().length;
            double[] logp = new double[steps], exit = new double[steps], qLogp = new double[qs.length];
            double[] qExit = new double[qs.length];
            boolean[] ok = new boolean[steps], qOk = new boolean[qs.length];
            Arrays.fill(ok, true);
            Arrays.fill(qOk, true);
            int[][] pred = new int[steps][len];
            double gateOk = 1, gateLogp = 0;
            for (int j = 0; j < len; j++) {
                int row = i * seqLen + r.first() + j, want = r.cont()[j];
                ExitStats.distribution(lam, n, row, p);
                double tokOk = 0;
                for (int t = 0; t < steps; t++) {
                    pred[t][j] = argmax(logits[t], row * vocab, vocab);
                    boolean hit = pred[t][j] == want;
                    ok[t] &= hit;
                    logp[t] -= ce[t * n + row];
                    exit[t] += p[t] / len;
                    tokOk += hit ? p[t] : 0;
                    gateLogp -= p[t] * ce[t * n + row];
                }
                gateOk *= tokOk;
                for (int k = 0; k < qs.length; k++) {
                    int t = ExitStats.exitStep(lam, n, row, steps, policies[k]);
                    qLogp[k] -= ce[t * n + row];
                    qOk[k] &= pred[t][j] == want;
                    qExit[k] += (t + 1.0) / len;
                }
            }
            out[i] = new RowOut(logp, ok, pred, exit, gateOk, gateLogp, qLogp, qOk, qExit);
        }
        return out;
    }

    private static int argmax(float[] v, int off, int len) {
        int best = 0;
        for (int j = 1; j < len; j++) {
            if (v[off + j] > v[off + best]) {
                best = j;
            }
        }
        return best;
    }

    private static Result aggregate(TextTokenizer tok, int steps, List<Item> items, List<Row> rows, RowOut[] outs,
                                    double[] qs) {
        int m = items.size();
        double[] acc = new double[steps], nll = new double[steps], exit = new double[steps];
        double[] qAcc = new double[qs.length], qStep = new double[qs.length];
        double gateAcc = 0;
        List<Scored> scored = new ArrayList<>();
        int r = 0;
        for (int i = 0; i < m; i++) {
            Item it = items.get(i);
            int from = r;
            while (r < rows.size() && rows.get(r).item() == i) {
                r++;
            }
            Scored s = it.choices().isEmpty() ? generated(tok, it, outs[from])
                    : chosen(it, Arrays.copyOfRange(outs, from, r), steps, qs.length);
            scored.add(s);
            for (int t = 0; t < steps; t++) {
                acc[t] += s.correct()[t] ? 1 : 0;
                nll[t] += s.answerNll()[t];
                exit[t] += s.exit()[t];
            }
            gateAcc += s.gateCorrect();
            for (int k = 0; k < qs.length; k++) {
                qAcc[k] += s.qCorrect()[k] ? 1 : 0;
                qStep[k] += s.qExitStep()[k];
            }
        }
        double meanStep = 0;
        for (int t = 0; t < steps; t++) {
            acc[t] /= m;
            nll[t] /= m;
            exit[t] /= m;
            meanStep += (t + 1) * exit[t];
        }
        for (int k = 0; k < qs.length; k++) {
            qAcc[k] /= m;
            qStep[k] /= m;
        }
        return new Result(m, acc, nll, exit, meanStep, gateAcc / m, qs.clone(), qAcc, qStep, scored);
    }

    private static Scored generated(TextTokenizer tok, Item it, RowOut o) {
        int steps = o.logp().length;
        double[] nll = new double[steps];
        String[] pred = new String[steps];
        for (int t = 0; t < steps; t++) {
            nll[t] = -o.logp()[t];
            pred[t] = tok.decode(o.pred()[t]);
        }
        return new Scored(it, o.ok(), nll, pred, o.pred().clone(), o.exit(), o.gateOk(), o.qOk(), o.qExitStep());
    }

    // a multiple-choice item from its choices' rows, in the item's order
    private static Scored chosen(Item it, RowOut[] c, int steps, int nq) {
        int ans = it.choices().indexOf(it.answer());
        boolean[] correct = new boolean[steps];
        double[] nll = new double[steps];
        String[] pred = new String[steps];
        for (int t = 0; t < steps; t++) {
            final int step = t;
            int best = best(c, o -> o.logp()[step]);
            correct[t] = best == ans;
            nll[t] = -c[ans].logp()[t];
            pred[t] = it.choices().get(best);
        }
        boolean[] qOk = new boolean[nq];
        for (int k = 0; k < nq; k++) {
            final int q = k;
            qOk[k] = best(c, o -> o.qLogp()[q]) == ans;
        }
        double gate = best(c, RowOut::gateLogp) == ans ? 1 : 0;
        return new Scored(it, correct, nll, pred, null, c[ans].exit(), gate, qOk, c[ans].qExitStep());
    }

    // the first choice of highest score
    private static int best(RowOut[] c, java.util.function.ToDoubleFunction<RowOut> score) {
        int best = 0;
        for (int j = 1; j < c.length; j++) {
            if (score.applyAsDouble(c[j]) > score.applyAsDouble(c[best])) {
                best = j;
            }
        }
        return best;
    }
}
