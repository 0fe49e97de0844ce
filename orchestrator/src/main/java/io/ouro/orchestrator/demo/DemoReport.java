package io.ouro.orchestrator.demo;

import io.ouro.orchestrator.train.StepMetrics;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The demo's closing report: as text for the console, and as an HTML page whose SVG charts show the
 * training cross-entropy of each loop step (with the held-out validation points) and the mean exit
 * distribution over training.
 */
public final class DemoReport {

    /** Everything the report shows. */
    public record Facts(String device, String corpus, long documents, int vocab, long tokens, double tokenizeSeconds,
                        List<StepMetrics> steps, List<String> stageOfStep, List<double[][]> validations,
                        AnswerEval.Result answers, double trainSeconds, double tokensPerSecond, String checkpoints,
                        String reportDir, double wallSeconds, Mano.Floor floor, boolean answerLoss) {
    }

    private static final String[] COLORS = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
            "#e377c2", "#7f7f7f"};

    private DemoReport() {
    }

    static String vec(double[] v, String f) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < v.length; i++) {
            b.append(i == 0 ? "" : " ").append(Double.isNaN(v[i]) ? "–" : String.format(Locale.ROOT, f, v[i]));
        }
        return b.append(']').toString();
    }

    /** The console report. */
    public static List<String> text(Facts f) {
        List<String> out = new ArrayList<>();
        out.add("==== ouro demo: report ====");
        out.add(String.format(Locale.ROOT, "corpus: %s (%d documents), tokenizer vocabulary %d, %d tokens in the shards"
                + " (tokenized in %.1f s)", f.corpus(), f.documents(), f.vocab(), f.tokens(), f.tokenizeSeconds()));
        out.add("device: " + f.device());
        StepMetrics last = f.steps().get(f.steps().size() - 1);
        out.add(String.format(Locale.ROOT, "training: %d steps in %.1f s, %.0f tokens/s (all workers), last loss %.4f,"
                        + " last-step CE per loop step %s", f.steps().size(), f.trainSeconds(), f.tokensPerSecond(),
                last.loss(), vec(last.stepCe(), "%.3f")));
        if (!f.validations().isEmpty()) {
            double[][] v = f.validations().get(f.validations().size() - 1);
            out.add(String.format(Locale.ROOT, "validation (held-out documents%s, after step %d): CE per loop step %s,"
                    + " mean exit %s", f.answerLoss() ? ", on their answers" : "", (long) v[0][0] - 1, vec(v[1], "%.4f"), vec(v[2], "%.3f")));
        }
        Mano.Floor fl = f.floor();
        if (fl != null && !f.validations().isEmpty() && !f.answerLoss()) {
            double perDoc = (double) f.tokens() / f.documents(); // tokens per document, EOS included
            double[] v = f.validations().get(f.validations().size() - 1)[1];
            out.add(String.format(Locale.ROOT, "what the validation CE means here (%.2f tokens per document): %.3f nats per"
                            + " token is the corpus's floor with exact answers, %.3f with answers guessed from the top"
                            + " operator alone; the model is at %.3f (last loop step)", perDoc, fl.format() / perDoc,
                    (fl.format() + fl.guessAnswer()) / perDoc, v[v.length - 1]));
        }
        AnswerEval.Result a = f.answers();
        if (a != null) {
            double guess = fl == null ? 1.0 / Mano.P : fl.guessAccuracy();
            double sd = Math.sqrt(guess * (1 - guess) / a.expressions());
            double best = java.util.Arrays.stream(a.accuracy()).max().orElse(0);
            out.add(String.format(Locale.ROOT, "answer accuracy on %d held-out expressions, per loop step: %s"
                            + " (best guess without the arithmetic: %.3f; the best loop step is %.1f standard errors %s it)",
                    a.expressions(), vec(a.accuracy(), "%.3f"), guess, Math.abs(best - guess) / sd,
                    best >= guess ? "above" : "below"));
            out.add("answer CE per loop step: " + vec(a.answerCe(), "%.3f") + "; mean exit distribution at the"
                    + " answer: " + vec(a.meanExit(), "%.3f") + String.format(Locale.ROOT,
                    "; accuracy when exiting as the gate says: %.3f", a.exitAccuracy()));
            for (int k = 0; k < a.tasks().q().length; k++) {
                out.add(String.format(Locale.ROOT, "  Q-exit at q = %.2f: accuracy %.3f, mean exit step %.2f",
                        a.tasks().q()[k], a.tasks().qAccuracy()[k], a.tasks().qMeanExitStep()[k]));
            }
            for (int o = 0; o < a.opsCount().length; o++) {
                if (a.opsCount()[o] > 0) {
                    out.add(String.format(Locale.ROOT, "  %d operator(s), %d expressions: accuracy per loop step %s", o,
                            a.opsCount()[o], vec(a.accuracyByOps()[o], "%.3f")));
                }
            }
            out.add("sampled answers (answer per loop step | truth):");
            for (AnswerEval.Sample s : a.samples()) {
                StringBuilder b = new StringBuilder("  ").append(s.prefix()).append(" = ");
                for (int t = 0; t < s.predicted().length; t++) {
                    b.append(t == 0 ? "" : " ").append(s.predicted()[t] < 0 ? "?" : String.valueOf(s.predicted()[t]));
                }
                b.append(" | ").append(s.answer()).append(s.predicted()[s.predicted().length - 1] == s.answer()
                        ? "  ok" : "");
                out.add(b.toString());
            }
        } else {
            out.add("answer accuracy: not measured (a user corpus has no held-out Mano expressions)");
        }
        out.add("checkpoints: " + f.checkpoints());
        out.add("report: " + f.reportDir() + "/report.html (loss curves per loop step, exit distribution), "
                + f.reportDir() + "/report.txt, " + f.reportDir() + "/report.json");
        out.add(String.format(Locale.ROOT, "demo wall time: %.1f s", f.wallSeconds()));
        return out;
    }

    /**
     * The machine-readable report ({@code report.json}): held-out answer accuracy per loop step, overall and by number
     * of operators, the no-computation baseline, the mean exit distribution at the answer, the wall time and the
     * device, with the training figures beside them. Accuracy keys are absent when no Mano expressions were held out.
     */
    public static com.fasterxml.jackson.databind.node.ObjectNode json(Facts f) {
        var m = new com.fasterxml.jackson.databind.ObjectMapper();
        var o = m.createObjectNode();
        o.put("device", f.device()).put("wall_seconds", f.wallSeconds()).put("corpus", f.corpus())
                .put("documents", f.documents()).put("vocab", f.vocab()).put("tokens", f.tokens())
                .put("train_steps", f.steps().size()).put("train_seconds", f.trainSeconds())
                .put("train_tokens_per_second", f.tokensPerSecond())
                .put("final_loss", f.steps().get(f.steps().size() - 1).loss());
        if (!f.validations().isEmpty()) {
            array(o.putArray("validation_ce_per_step"), f.validations().get(f.validations().size() - 1)[1]);
        }
        AnswerEval.Result a = f.answers();
        if (a != null) {
            o.put("heldout_expressions", a.expressions());
            array(o.putArray("accuracy_per_step"), a.accuracy());
            var by = o.putObject("accuracy_per_step_by_ops");
            var counts = o.putObject("expressions_by_ops");
            for (int k = 0; k < a.opsCount().length; k++) {
                if (a.opsCount()[k] > 0) {
                    array(by.putArray(String.valueOf(k)), a.accuracyByOps()[k]);
                    counts.put(String.valueOf(k), a.opsCount()[k]);
                }
            }
            if (f.floor() != null) {
                o.put("baseline_accuracy", f.floor().guessAccuracy());
            }
            array(o.putArray("exit_distribution"), a.meanExit());
            array(o.putArray("answer_ce_per_step"), a.answerCe());
            o.put("gate_exit_accuracy", a.exitAccuracy());
            var q = o.putArray("q_exit");
            for (int k = 0; k < a.tasks().q().length; k++) {
                q.addObject().put("q", a.tasks().q()[k]).put("accuracy", a.tasks().qAccuracy()[k])
                        .put("mean_exit_step", a.tasks().qMeanExitStep()[k]);
            }
        }
        return o;
    }

    private static void array(com.fasterxml.jackson.databind.node.ArrayNode n, double[] v) {
        for (double x : v) {
            if (Double.isFinite(x)) {
                n.add(x);
            } else {
                n.addNull();
            }
        }
    }

    /** The HTML page: the text report and two charts. */
    public static String html(Facts f) {
        int maxT = 0;
        for (StepMetrics m : f.steps()) {
            maxT = Math.max(maxT, m.stepCe().length);
        }
        List<double[]> xs = new ArrayList<>();
        List<double[]> ces = new ArrayList<>();
        for (int t = 0; t < maxT; t++) {
            List<Double> x = new ArrayList<>(), y = new ArrayList<>();
            for (StepMetrics m : f.steps()) {
                if (t < m.stepCe().length && Double.isFinite(m.stepCe()[t])) {
                    x.add((double) m.step());
                    y.add(m.stepCe()[t]);
                }
            }
            xs.add(x.stream().mapToDouble(Double::doubleValue).toArray());
            ces.add(smooth(y.stream().mapToDouble(Double::doubleValue).toArray(), 9));
        }
        List<double[]> vx = new ArrayList<>(), vy = new ArrayList<>();
        for (int t = 0; t < maxT; t++) {
            List<Double> x = new ArrayList<>(), y = new ArrayList<>();
            for (double[][] v : f.validations()) {
                if (t < v[1].length) {
                    x.add(v[0][0] - 1);
                    y.add(v[1][t]);
                }
            }
            vx.add(x.stream().mapToDouble(Double::doubleValue).toArray());
            vy.add(y.stream().mapToDouble(Double::doubleValue).toArray());
        }
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ouro demo report</title>")
                .append("<style>body{font-family:sans-serif;margin:2em;max-width:960px}pre{background:#f6f6f6;")
                .append("padding:1em;overflow-x:auto}svg{background:#fff;border:1px solid #ddd}</style></head><body>\n")
                .append("<h1>ouro demo: a looped LM on the Mano task</h1>\n");
        h.append("<h2>Training cross-entropy per loop step</h2>\n<p>Lines: training CE of each loop step (moving")
                .append(" average of 9 steps); dots: validation CE on held-out documents. Stage boundaries dashed.</p>\n");
        List<double[]> floors = new ArrayList<>();
        if (f.floor() != null && !f.answerLoss()) {
            double perDoc = (double) f.tokens() / f.documents();
            floors.add(new double[] {f.floor().format() / perDoc});
            floors.add(new double[] {(f.floor().format() + f.floor().guessAnswer()) / perDoc});
            h.append("<p>Grey lines: the corpus's entropy floor with exact answers (lower) and with answers guessed from")
                    .append(" the top operator alone (upper); the gap between them is the arithmetic.</p>\n");
        }
        h.append(chart(xs, ces, vx, vy, boundaries(f), floors, "step", "CE (nats)"));
        h.append("<h2>Mean exit distribution over training</h2>\n<p>Share of tokens that exit at each loop step")
                .append(" (stacked; the gate's distribution p_t averaged over the batch).</p>\n");
        h.append(exitChart(f, maxT));
        h.append("<h2>Report</h2>\n<pre>");
        for (String line : text(f)) {
            h.append(escape(line)).append('\n');
        }
        h.append("</pre>\n</body></html>\n");
        return h.toString();
    }

    private static List<Double> boundaries(Facts f) {
        List<Double> b = new ArrayList<>();
        for (int i = 1; i < f.steps().size(); i++) {
            if (!f.stageOfStep().get(i).equals(f.stageOfStep().get(i - 1))) {
                b.add(f.steps().get(i).step() - 0.5);
            }
        }
        return b;
    }

    static double[] smooth(double[] y, int w) {
        double[] o = new double[y.length];
        for (int i = 0; i < y.length; i++) {
            int a = Math.max(0, i - w / 2), b = Math.min(y.length, i + w / 2 + 1);
            double s = 0;
            for (int j = a; j < b; j++) {
                s += y[j];
            }
            o[i] = s / (b - a);
        }
        return o;
    }

    private static final int W = 860, H = 340, L = 60, R = 110, T = 20, B = 40;

    private static String chart(List<double[]> xs, List<double[]> ys, List<double[]> px, List<double[]> py,
                                List<Double> bounds, List<double[]> levels, String xLabel, String yLabel) {
        double x0 = Double.MAX_VALUE, x1 = -Double.MAX_VALUE, y0 = Double.MAX_VALUE, y1 = -Double.MAX_VALUE;
        for (int s = 0; s < xs.size(); s++) {
            for (int i = 0; i < xs.get(s).length; i++) {
                x0 = Math.min(x0, xs.get(s)[i]);
                x1 = Math.max(x1, xs.get(s)[i]);
                y0 = Math.min(y0, ys.get(s)[i]);
                y1 = Math.max(y1, ys.get(s)[i]);
            }
            for (int i = 0; i < px.get(s).length; i++) {
                y0 = Math.min(y0, py.get(s)[i]);
                y1 = Math.max(y1, py.get(s)[i]);
            }
        }
        for (double[] l : levels) {
            y0 = Math.min(y0, l[0]);
            y1 = Math.max(y1, l[0]);
        }
        if (x1 <= x0) {
            x1 = x0 + 1;
        }
        if (y1 <= y0) {
            y1 = y0 + 1;
        }
        Axes ax = new Axes(x0, x1, y0, y1);
        StringBuilder b = ax.frame(xLabel, yLabel);
        for (double x : bounds) {
            b.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#999\""
                    + " stroke-dasharray=\"4 3\"/>", ax.x(x), T, ax.x(x), H - B));
        }
        for (double[] l : levels) {
            b.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#888\""
                    + " stroke-dasharray=\"6 3\"/><text x=\"%d\" y=\"%.1f\" font-size=\"11\" fill=\"#666\""
                    + " text-anchor=\"end\">%.3f</text>\n", L, ax.y(l[0]), W - R, ax.y(l[0]), W - R - 4, ax.y(l[0]) - 3, l[0]));
        }
        for (int s = 0; s < xs.size(); s++) {
            String c = COLORS[s % COLORS.length];
            StringBuilder pts = new StringBuilder();
            for (int i = 0; i < xs.get(s).length; i++) {
                pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", ax.x(xs.get(s)[i]), ax.y(ys.get(s)[i])));
            }
            b.append("<polyline fill=\"none\" stroke=\"").append(c).append("\" stroke-width=\"1.5\" points=\"")
                    .append(pts).append("\"/>\n");
            for (int i = 0; i < px.get(s).length; i++) {
                b.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\""
                        + " stroke=\"#000\" stroke-width=\"0.5\"/>", ax.x(px.get(s)[i]), ax.y(py.get(s)[i]), c));
            }
            b.append(legend(s, c, "loop step " + (s + 1)));
        }
        return b.append("</svg>\n").toString();
    }

    private static String exitChart(Facts f, int maxT) {
        List<StepMetrics> st = f.steps();
        double x0 = st.get(0).step(), x1 = Math.max(x0 + 1, st.get(st.size() - 1).step());
        Axes ax = new Axes(x0, x1, 0, 1);
        StringBuilder b = ax.frame("step", "share of tokens");
        double[][] cum = new double[st.size()][maxT + 1];
        for (int i = 0; i < st.size(); i++) {
            double[] e = st.get(i).meanExit();
            for (int t = 0; t < maxT; t++) {
                cum[i][t + 1] = cum[i][t] + (t < e.length && Double.isFinite(e[t]) ? e[t] : 0);
            }
        }
        for (int t = 0; t < maxT; t++) {
            StringBuilder pts = new StringBuilder();
            for (int i = 0; i < st.size(); i++) {
                pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", ax.x(st.get(i).step()), ax.y(cum[i][t + 1])));
            }
            for (int i = st.size() - 1; i >= 0; i--) {
                pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", ax.x(st.get(i).step()), ax.y(cum[i][t])));
            }
            String c = COLORS[t % COLORS.length];
            b.append("<polygon fill=\"").append(c).append("\" fill-opacity=\"0.75\" stroke=\"none\" points=\"")
                    .append(pts).append("\"/>\n");
            b.append(legend(t, c, "exit at step " + (t + 1)));
        }
        return b.append("</svg>\n").toString();
    }

    private static String legend(int i, String color, String label) {
        return String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                + "<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>\n", W - R + 10, T + 18 * i, color, W - R + 26,
                T + 18 * i + 11, label);
    }

    private record Axes(double x0, double x1, double y0, double y1) {

        double x(double v) {
            return L + (v - x0) / (x1 - x0) * (W - L - R);
        }

        double y(double v) {
            return H - B - (v - y0) / (y1 - y0) * (H - T - B);
        }

        StringBuilder frame(String xLabel, String yLabel) {
            StringBuilder b = new StringBuilder();
            b.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">\n",
                    W, H));
            b.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\""
                    + " stroke=\"#333\"/>\n", L, T, W - L - R, H - T - B));
            for (int k = 0; k <= 4; k++) {
                double yv = y0 + (y1 - y0) * k / 4, xv = x0 + (x1 - x0) * k / 4;
                b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.2f"
                        + "</text>", L - 4, y(yv) + 4, yv));
                b.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">"
                        + "%.0f</text>", x(xv), H - B + 14, xv));
            }
            b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>",
                    L + (W - L - R) / 2, H - 6, xLabel));
            b.append(String.format(Locale.ROOT, "<text x=\"14\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\""
                    + " transform=\"rotate(-90 14 %d)\">%s</text>\n", T + (H - T - B) / 2, T + (H - T - B) / 2, yLabel));
            return b;
        }
    }

    static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
