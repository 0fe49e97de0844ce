package io.ouro.orchestrator.demo;

import io.ouro.orchestrator.eval.TaskScorer;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.model.LoopConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * Answer accuracy of a trained LoopLM on held-out Mano expressions, per recurrent step: the {@link TaskScorer} on the
 * items {@code {"prompt": "<expression> =", "answer": " <value>"}}, with the figures the demo's report adds (accuracy by
 * operator count, sampled answers).
 */
public final class AnswerEval {

    /** The Q-exit thresholds the demo reports. */
    static final double[] Q = {0.5, 0.9};

    /** One expression's outcome: the truth and the answer of each step (-1 where it is not a number below P). */
    public record Sample(String prefix, int answer, int ops, int[] predicted) {
    }

    /** The figures over all expressions; {@code tasks} is the scorer's result they come from. */
    public record Result(int expressions, double[] accuracy, double[] answerCe, double[] meanExit,
                         double exitAccuracy, int[] opsCount, double[][] accuracyByOps, List<Sample> samples,
                         TaskScorer.Result tasks) {
    }

    private AnswerEval() {
    }

    /** Evaluates {@code exprs} on the model {@code cfg} with parameters {@code params}, {@code batch} at a time. */
    public static Result run(BpeTokenizer tok, LoopConfig cfg, float[] params, List<Mano.Expr> exprs, int batch,
                             int keepSamples, int modulus) {
        if (exprs.isEmpty()) {
            throw new IllegalArgumentException("no held-out expressions to evaluate");
        }
        List<TaskScorer.Item> items = new ArrayList<>();
        for (int i = 0; i < exprs.size(); i++) {
            Mano.Expr e = exprs.get(i);
            items.add(new TaskScorer.Item(i + 1, e.prefix() + " =", " " + e.answer(), List.of()));
        }
        TaskScorer.Result r = TaskScorer.score(tok, cfg, params, items, batch, Q);
        int steps = cfg.steps();
        int maxOps = exprs.stream().mapToInt(Mano.Expr::ops).max().orElse(0);
        int[] opsCount = new int[maxOps + 1];
        double[][] byOps = new double[maxOps + 1][steps];
        List<Sample> samples = new ArrayList<>();
        for (int i = 0; i < exprs.size(); i++) {
            Mano.Expr e = exprs.get(i);
            TaskScorer.Scored s = r.scored().get(i);
            opsCount[e.ops()]++;
            int[] pred = new int[steps];
            for (int t = 0; t < steps; t++) {
                byOps[e.ops()][t] += s.correct()[t] ? 1 : 0;
                pred[t] = decodeAnswer(s.predicted()[t], modulus);
            }
            if (samples.size() < keepSamples) {
                samples.add(new Sample(e.prefix(), e.answer(), e.ops(), pred));
            }
        }
        for (int o = 0; o <= maxOps; o++) {
            for (int t = 0; t < steps; t++) {
                byOps[o][t] = opsCount[o] == 0 ? Double.NaN : byOps[o][t] / opsCount[o];
            }
        }
        return new Result(exprs.size(), r.accuracy(), r.answerNll(), r.meanExit(), r.gateAccuracy(), opsCount, byOps,
                samples, r);
    }

    // the number a predicted answer stands for, or -1 when it is not one of 0..p-1
    private static int decodeAnswer(String s, int p) {
        try {
            int v = Integer.parseInt(s.trim());
            return v >= 0 && v < p ? v : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
