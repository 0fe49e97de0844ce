package io.ouro.orchestrator.bench;

import io.ouro.orchestrator.demo.Mano;
import io.ouro.orchestrator.demo.SynthApp;
import io.ouro.worker.backend.JavaBackend;
import io.ouro.worker.data.ArrayTokenSource;
import io.ouro.worker.data.Sampler;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.reference.ReferenceModel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code tests/bench.sh loops}: looplm-spec §6's synthetic claim at small scale. The same k layers trained once
 * (k⊗1) and looped T times (k⊗T), and a plain model as deep as the loop (k·T⊗1), on the same batches of Mano
 * expressions over F_p with 1..L operators (one expression per row, aligned, the loss on the answer: the product's
 * {@code sampling: aligned, loss: answer}), then held-out expressions of each number of operators (none of 2+ operators
 * occurs in training) answered by each model's last loop step. Tokens are the expression's symbols (p numerals,
 * three operators, '=', EOS): the bench measures the models, not a tokenizer. Runs on the Java backend.
 *
 * <p>Args (key=value): steps=600 p=7 ops=3 k=2 T=4 batch=128 lr=0.003 hidden=64 heads=4 ffn=176 heldout=300
 * models=k1,kT,kT1 seed=1 form=prefix|chain ({@link Mano.Form}) beta=0.05 (the exit entropy's weight) t1=0 (the looped
 * model's first steps at T = 1) ops1=0 (the first steps on single operations only). Ends with {@code RESULT loops looped=<acc> plain=<acc> deep=<acc> ... ratio=<looped/plain>}
 * at the largest number of operators.
 */
public final class LoopsBench {

    private LoopsBench() {
    }

    /** The bench's symbols: numerals 0..p-1, then + - * = and EOS. */
    record Vocab(int p) {
        int size() {
            return p + 5;
        }

        int eos() {
            return p + 4;
        }

        int[] encode(String document) {
            String[] t = document.trim().split(" ");
            int[] out = new int[t.length];
            for (int i = 0; i < t.length; i++) {
                out[i] = switch (t[i]) {
                    case "+" -> p;
                    case "-" -> p + 1;
                    case "*" -> p + 2;
                    case "=" -> p + 3;
                    default -> Integer.parseInt(t[i]);
                };
            }
            return out;
        }
    }

    public static void main(String[] args) {
        Map<String, String> a = new LinkedHashMap<>();
        for (String s : args) {
            int eq = s.indexOf('=');
            if (eq < 1) {
                throw new IllegalArgumentException("loops bench: expected key=value, got '" + s + "'");
            }
            a.put(s.substring(0, eq), s.substring(eq + 1));
        }
        int steps = Integer.parseInt(a.getOrDefault("steps", "600"));
        int p = Mano.checkModulus(Integer.parseInt(a.getOrDefault("p", "7")));
        int maxOps = Integer.parseInt(a.getOrDefault("ops", "3"));
        int k = Integer.parseInt(a.getOrDefault("k", "2"));
        int loops = Integer.parseInt(a.getOrDefault("T", "4"));
        int batch = Integer.parseInt(a.getOrDefault("batch", "128"));
        double lr = Double.parseDouble(a.getOrDefault("lr", "0.003"));
        int hidden = Integer.parseInt(a.getOrDefault("hidden", "64"));
        int heads = Integer.parseInt(a.getOrDefault("heads", "4"));
        int ffn = Integer.parseInt(a.getOrDefault("ffn", "176"));
        int heldPerOps = Integer.parseInt(a.getOrDefault("heldout", "300"));
        long seed = Long.parseLong(a.getOrDefault("seed", "1"));
        Mano.Form form = Mano.Form.parse(a.getOrDefault("form", "prefix"));
        double beta = Double.parseDouble(a.getOrDefault("beta", "0.05"));
        List<String> models = List.of(a.getOrDefault("models", "k1,kT,kT1").split(","));
        int warmT1 = Integer.parseInt(a.getOrDefault("t1", "0")); // the looped model's first steps at T = 1
        int ops1 = Integer.parseInt(a.getOrDefault("ops1", "0")); // the first steps on single operations only
        Set<String> known = Set.of("t1", "ops1", "steps", "p", "ops", "k", "T", "batch", "lr", "hidden", "heads", "ffn", "heldout",
                "models", "seed", "form", "beta");
        for (String key : a.keySet()) {
            if (!known.contains(key)) {
                throw new IllegalArgumentException("loops bench: unknown argument '" + key + "', known: " + known);
            }
        }
        Vocab v = new Vocab(p);

        // held-out: per number of operators, distinct expressions from another stream
        List<List<Mano.Expr>> held = new ArrayList<>();
        Set<String> heldPrefixes = new HashSet<>();
        List<Mano.Expr> all = SynthApp.heldout(seed, 1, maxOps, heldPerOps * maxOps, p, form);
        for (int ops = 1; ops <= maxOps; ops++) {
            int n = ops;
            held.add(all.stream().filter(e -> e.ops() == n).toList());
            if (ops >= 2) {
                held.get(ops - 1).forEach(e -> heldPrefixes.add(e.prefix()));
            }
        }
        // training stream: enough documents for every step's batch once
        long docsNeeded = (long) steps * batch;
        List<Integer> stream = new ArrayList<>();
        long rejected = 0;
        for (long i = 0, n = 0; n < docsNeeded; i++) {
            Mano.Expr e = Mano.at(seed, i, 1, maxOps, p, form);
            if (e.ops() >= 2 && heldPrefixes.contains(e.prefix())) {
                rejected++;
                continue;
            }
            for (int t : v.encode(e.document())) {
                stream.add(t);
            }
            stream.add(v.eos());
            n++;
        }
        int[] tokens = stream.stream().mapToInt(Integer::intValue).toArray();
        // EOS, the expression and '=' (the answer is a target, not an input)
        int seqLen = 2 + v.encode(Mano.at(seed, 0, maxOps, maxOps, p, form).prefix()).length;
        ArrayTokenSource src = new ArrayTokenSource(tokens, "mano F_" + p, v.eos());
        Sampler sampler = new Sampler(List.of(src), List.of("mano"), new double[] {1}, seqLen, seed, 0, false,
                new Sampler.Layout(true, true));
        List<Integer> singles = new ArrayList<>();
        for (long i = 0; i < (long) Math.max(1, ops1) * batch; i++) {
            for (int t : v.encode(Mano.at(seed + 1, i, 1, 1, p, form).document())) {
                singles.add(t);
            }
            singles.add(v.eos());
        }
        Sampler single = new Sampler(List.of(new ArrayTokenSource(singles.stream().mapToInt(Integer::intValue).toArray(),
                "single operations", v.eos())), List.of("ops1"), new double[] {1}, seqLen, seed, 1, false,
                new Sampler.Layout(true, true));
        System.out.printf(Locale.ROOT, "loops bench: Mano (%s) over F_%d, 1..%d operators, %d steps x %d expressions"
                        + " (%d training documents, %d held-out duplicates skipped), seq %d, lr %.1e, d %d; held-out %d"
                        + " per number of operators%n", form.name().toLowerCase(Locale.ROOT), p, maxOps, steps, batch, docsNeeded, rejected, seqLen, lr, hidden,
                heldPerOps);

        Map<String, double[]> acc = new LinkedHashMap<>();
        Map<String, Long> params = new LinkedHashMap<>();
        Map<String, Double> seconds = new LinkedHashMap<>();
        for (String m : models) {
            int layers = switch (m) {
                case "k1", "kT" -> k;
                case "kT1" -> k * loops;
                default -> throw new IllegalArgumentException("loops bench: models are k1, kT, kT1; got '" + m + "'");
            };
            int t = m.equals("kT") ? loops : 1;
            LoopConfig cfg = new LoopConfig(v.size(), hidden, layers, heads, ffn, t, 10_000, 1e-6, beta, 0.02, seed);
            long t0 = System.nanoTime();
            StepReport last = null;
            float[] w = null;
            io.ouro.worker.model.OptimizerState opt = null;
            int warm = Math.max(1, steps / 20);
            for (int phase = 0; phase < 2; phase++) {
                int from = phase == 0 ? 0 : (t > 1 ? Math.min(warmT1, steps) : steps);
                int to = phase == 0 ? (t > 1 ? Math.min(warmT1, steps) : steps) : steps;
                if (from >= to) {
                    continue;
                }
                LoopConfig run = phase == 0 && t > 1 ? cfg.withSteps(1) : cfg;
                try (JavaBackend b = new JavaBackend(run, AdamWConfig.ouro(), StepShape.whole(batch, seqLen))) {
                    b.setParameters(w == null ? ParamInit.initialize(b.layout()) : w);
                    if (opt != null) {
                        b.setOptimizerState(opt);
                    }
                    for (int s = from; s < to; s++) {
                        Sampler.Batch bt = s < ops1 ? single.batch(s, (long) s * batch, batch, 0, 1)
                                : sampler.batch(s, (long) (s - ops1) * batch, batch, 0, 1);
                        b.zeroGradients();
                        last = b.forwardBackward(bt.tokens(), bt.targets(), Objective.stageOne(cfg.beta()));
                        b.clipGradients(1.0);
                        double progress = (s - warm) / (double) Math.max(1, steps - warm);
                        double rate = s < warm ? lr * (s + 1) / warm
                                : lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
                        b.adamw(rate, x -> true);
                        if ((s + 1) % Math.max(1, steps / 10) == 0) {
                            System.out.printf(Locale.ROOT, "  %s: step %d/%d (T %d) loss %.4f (%.0f s)%n",
                                    name(m, k, loops), s + 1, steps, run.steps(), last.loss(),
                                    (System.nanoTime() - t0) / 1e9);
                        }
                    }
                    w = b.parameters();
                    opt = b.optimizerState();
                }
            }
            seconds.put(m, (System.nanoTime() - t0) / 1e9);
            params.put(m, (long) w.length);
            double[] perOps = new double[maxOps], firstStep = new double[maxOps];
            for (int ops = 1; ops <= maxOps; ops++) {
                perOps[ops - 1] = accuracy(cfg, w, v, held.get(ops - 1), cfg.steps() - 1);
                firstStep[ops - 1] = accuracy(cfg, w, v, held.get(ops - 1), 0);
            }
            if (t > 1) {
                System.out.printf(Locale.ROOT, "  %s: the first loop step's accuracy by operators %s%n", name(m, k, loops),
                        Arrays.toString(round(firstStep)));
            }
            acc.put(m, perOps);
            System.out.printf(Locale.ROOT, "  %s (%d layers, T %d, %d parameters): accuracy by operators %s, %.0f s%n",
                    name(m, k, loops), layers, t, w.length, Arrays.toString(round(perOps)), seconds.get(m));
        }

        System.out.println();
        StringBuilder head = new StringBuilder("| model | parameters | train s |");
        StringBuilder rule = new StringBuilder("|---|---:|---:|");
        for (int ops = 1; ops <= maxOps; ops++) {
            head.append(' ').append(ops).append(" op").append(ops > 1 ? "s" : "").append(" |");
            rule.append("---:|");
        }
        System.out.println(head);
        System.out.println(rule);
        for (String m : acc.keySet()) {
            StringBuilder row = new StringBuilder("| " + name(m, k, loops) + " | " + params.get(m) + " | "
                    + String.format(Locale.ROOT, "%.0f", seconds.get(m)) + " |");
            for (double x : acc.get(m)) {
                row.append(String.format(Locale.ROOT, " %.3f |", x));
            }
            System.out.println(row);
        }
        StringBuilder r = new StringBuilder("RESULT loops");
        double looped = acc.containsKey("kT") ? acc.get("kT")[maxOps - 1] : Double.NaN;
        double plain = acc.containsKey("k1") ? acc.get("k1")[maxOps - 1] : Double.NaN;
        r.append(String.format(Locale.ROOT, " looped=%.3f plain=%.3f", looped, plain));
        if (acc.containsKey("kT1")) {
            r.append(String.format(Locale.ROOT, " deep=%.3f", acc.get("kT1")[maxOps - 1]));
        }
        r.append(String.format(Locale.ROOT, " ops=%d p=%d k=%d T=%d steps=%d batch=%d ratio=%.3f", maxOps, p, k, loops,
                steps, batch, looped / plain));
        System.out.println(r);
    }

    static String name(String m, int k, int loops) {
        return switch (m) {
            case "k1" -> k + "⊗1";
            case "kT" -> k + "⊗" + loops;
            default -> (k * loops) + "⊗1";
        };
    }

    private static double[] round(double[] x) {
        double[] o = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            o[i] = Math.round(x[i] * 1000) / 1000.0;
        }
        return o;
    }

    /** The share of {@code exprs} whose answer is the argmax of loop step {@code step}'s logits after "... =". */
    static double accuracy(LoopConfig cfg, float[] w, Vocab v, List<Mano.Expr> exprs, int step) {
        int seqLen = 0;
        for (Mano.Expr e : exprs) {
            seqLen = Math.max(seqLen, v.encode(e.prefix() + " =").length + 1);
        }
        ReferenceModel model = new ReferenceModel(cfg);
        int right = 0;
        for (int r0 = 0; r0 < exprs.size(); r0 += 128) {
            List<Mano.Expr> part = exprs.subList(r0, Math.min(exprs.size(), r0 + 128));
            int b = part.size();
            int[] tokens = new int[b * seqLen], targets = new int[b * seqLen], at = new int[b];
            Arrays.fill(tokens, v.eos());
            Arrays.fill(targets, -1);
            for (int i = 0; i < b; i++) {
                int[] in = v.encode(part.get(i).prefix() + " =");
                System.arraycopy(in, 0, tokens, i * seqLen + 1, in.length);
                at[i] = i * seqLen + in.length; // the position of '=' predicts the answer
                targets[at[i]] = part.get(i).answer();
            }
            model.forward(w, tokens, targets, b, seqLen, Objective.stageOne(0), true);
            float[] logits = model.logits(step);
            for (int i = 0; i < b; i++) {
                int best = 0;
                for (int j = 1; j < cfg.vocab(); j++) {
                    if (logits[at[i] * cfg.vocab() + j] > logits[at[i] * cfg.vocab() + best]) {
                        best = j;
                    }
                }
                right += best == part.get(i).answer() ? 1 : 0;
            }
        }
        return (double) right / exprs.size();
    }
}
