package io.ouro.orchestrator.demo;

import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.reference.ReferenceModel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Answer accuracy of a trained LoopLM on held-out Mano expressions, per recurrent step. Each expression
 * is fed as {@code EOS expression " ="} (a document starts after an EOS in the packed training stream);
 * the model's answer at step t is the arg-max of step t's logits at the {@code =} position, and the answer
 * must be one token. Also the answer's cross-entropy per step, the mean exit distribution at that position,
 * and the accuracy expected when each expression exits where the exit distribution says.
 */
public final class AnswerEval {

    /** One expression's outcome: the truth and the answer of each step. */
    public record Sample(String prefix, int answer, int ops, int[] predicted) {
    }

    /** The figures over all expressions. */
    public record Result(int expressions, double[] accuracy, double[] answerCe, double[] meanExit,
                         double exitAccuracy, int[] opsCount, double[][] accuracyByOps, List<Sample> samples) {
    }

    private AnswerEval() {
    }

    /** Evaluates {@code exprs} on the model {@code cfg} with parameters {@code params}, {@code batch} at a time. */
    public static Result run(BpeTokenizer tok, LoopConfig cfg, float[] params, List<Mano.Expr> exprs, int batch,
                             int keepSamples) {
        if (exprs.isEmpty()) {
            throw new IllegalArgumentException("no held-out expressions to evaluate");
        }
        int steps = cfg.steps();
        int eos = tok.eosId();
        int maxOps = exprs.stream().mapToInt(Mano.Expr::ops).max().orElse(0);
        double[] correct = new double[steps], ce = new double[steps], exit = new double[steps];
        double exitCorrect = 0;
        int[] opsCount = new int[maxOps + 1];
        double[][] byOps = new double[maxOps + 1][steps];
        List<Sample> samples = new ArrayList<>();
        ReferenceModel model = new ReferenceModel(cfg);
        for (int b0 = 0; b0 < exprs.size(); b0 += batch) {
            List<Mano.Expr> part = exprs.subList(b0, Math.min(exprs.size(), b0 + batch));
            List<int[]> inputs = new ArrayList<>();
            int[] answers = new int[part.size()];
            int seqLen = 1;
            for (int i = 0; i < part.size(); i++) {
                Mano.Expr e = part.get(i);
                int[] prefix = tok.encode(e.prefix() + " =");
                int[] ans = tok.encode(" " + e.answer());
                if (ans.length != 1) {
                    throw new IllegalStateException("the answer ' " + e.answer() + "' is " + ans.length
                            + " tokens under this tokenizer; the Mano evaluation needs one (train the tokenizer on"
                            + " the Mano corpus)");
                }
                int[] in = new int[prefix.length + 1];
                in[0] = eos;
                System.arraycopy(prefix, 0, in, 1, prefix.length);
                inputs.add(in);
                answers[i] = ans[0];
                seqLen = Math.max(seqLen, in.length);
            }
            int n = part.size() * seqLen;
            int[] tokens = new int[n], targets = new int[n];
            Arrays.fill(tokens, eos);
            Arrays.fill(targets, -1);
            int[] rows = new int[part.size()];
            for (int i = 0; i < part.size(); i++) {
                int[] in = inputs.get(i);
                System.arraycopy(in, 0, tokens, i * seqLen, in.length);
                rows[i] = i * seqLen + in.length - 1; // the "=" position predicts the answer
                targets[rows[i]] = answers[i];
            }
            StepReport rep = model.forward(params, tokens, targets, part.size(), seqLen, Objective.stageOne(0), true);
            float[] lam = model.exitLambdas();
            int vocab = cfg.vocab();
            for (int t = 0; t < steps; t++) {
                ce[t] += rep.stepCe()[t] * part.size();
                exit[t] += rep.meanExit()[t] * part.size();
            }
            for (int i = 0; i < part.size(); i++) {
                Mano.Expr e = part.get(i);
                int[] pred = new int[steps];
                double survive = 1;
                opsCount[e.ops()]++;
                for (int t = 0; t < steps; t++) {
                    float[] logits = model.logits(t);
                    int best = 0;
                    for (int j = 1; j < vocab; j++) {
                        if (logits[rows[i] * vocab + j] > logits[rows[i] * vocab + best]) {
                            best = j;
                        }
                    }
                    boolean ok = best == answers[i];
                    pred[t] = decodeAnswer(tok, best);
                    correct[t] += ok ? 1 : 0;
                    byOps[e.ops()][t] += ok ? 1 : 0;
                    double l = lam[t * n + rows[i]];
                    double p = t + 1 < steps ? l * survive : survive;
                    survive *= 1 - l;
                    exitCorrect += ok ? p : 0;
                }
                if (samples.size() < keepSamples) {
                    samples.add(new Sample(e.prefix(), e.answer(), e.ops(), pred));
                }
            }
        }
        int m = exprs.size();
        for (int t = 0; t < steps; t++) {
            correct[t] /= m;
            ce[t] /= m;
            exit[t] /= m;
        }
        for (int o = 0; o <= maxOps; o++) {
            for (int t = 0; t < steps; t++) {
                byOps[o][t] = opsCount[o] == 0 ? Double.NaN : byOps[o][t] / opsCount[o];
            }
        }
        return new Result(m, correct, ce, exit, exitCorrect / m, opsCount, byOps, samples);
    }

    // the number a predicted token stands for, or -1 when it is not one of 0..P-1
    private static int decodeAnswer(BpeTokenizer tok, int id) {
        String s = tok.decode(new int[] {id}).trim();
        try {
            int v = Integer.parseInt(s);
            return v >= 0 && v < Mano.P ? v : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
