package io.ouro.orchestrator.config;

import io.ouro.orchestrator.config.TrainConfig.Source;
import io.ouro.worker.data.Sampler;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Recompute;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One stage of the curriculum from its section of the config (see {@link Stage}). */
final class StageParser {

    private StageParser() {
    }

    /** {@code stages[index]}, starting at step {@code first} from the model of the stage before it. */
    static Stage parse(Node n, int index, long first, LoopConfig prev, List<Source> sources, TrainSettings train) {
        String name = n.string("name", "stage" + index);
        int seqLen = (int) n.integer("seq_len", null, 1, 1 << 20);
        int[] perWorker = batch(n, name, seqLen, train.workers());
        int batchStart = perWorker[0];
        int batch = perWorker[1];
        long ramp = n.integer("ramp_steps", 0L, 0, Long.MAX_VALUE / 4);
        long steps;
        if (n.has("tokens")) {
            if (n.has("steps")) {
                throw n.error("tokens", "give either steps or tokens, not both");
            }
            long tokens = n.integer("tokens", null, 1, Long.MAX_VALUE / 4);
            steps = Stage.stepsForTokens(tokens, train.workers(), seqLen, batchStart, batch, ramp);
        } else {
            steps = n.integer("steps", null, 1, Long.MAX_VALUE / 4);
        }
        int t = (int) n.integer("recurrent_steps", (long) prev.steps(), 1, 64);
        double beta = n.number("beta", prev.beta(), 0, 100);
        double rope = n.number("rope_base", prev.ropeBase(), 1, 1e12);
        Stage.Upcycle up = null;
        int layers = prev.layers();
        if (n.has("upcycle")) {
            Node u = n.child("upcycle");
            int l = (int) u.integer("layers", null, 1, 4096);
            String mode = u.string("mode", "tile");
            if (!mode.equals("tile") && !mode.equals("interleave")) {
                throw u.error("mode", "expected tile or interleave, got '" + mode + "'");
            }
            if (l % prev.layers() != 0 || l <= prev.layers()) {
                throw u.error("layers", "expected a multiple of the current " + prev.layers() + " layers, larger, got " + l);
            }
            u.noOthers();
            up = new Stage.Upcycle(l, mode);
            layers = l;
        }
        Node lrn = n.child("lr");
        double peak = lrn.number("peak", 3e-4, 0, 10);
        long warm = lrn.integer("warmup_steps", 0L, 0, Long.MAX_VALUE / 4);
        String sched = lrn.string("schedule", "constant");
        if (!List.of("constant", "cosine", "wsd").contains(sched)) {
            throw lrn.error("schedule", "expected constant, cosine or wsd, got '" + sched + "'");
        }
        double minRatio = lrn.number("min_ratio", 0.1, 0, 1);
        double decay = lrn.number("decay_fraction", 0.2, 0, 1);
        lrn.noOthers();
        Map<String, Double> mixture = new LinkedHashMap<>();
        if (n.has("mixture")) {
            Node mx = n.child("mixture");
            for (Source s : sources) {
                if (mx.has(s.name())) {
                    mixture.put(s.name(), mx.number(s.name(), null, 0, 1e9));
                }
            }
            mx.noOthers();
        } else {
            for (Source s : sources) {
                mixture.put(s.name(), 1.0);
            }
        }
        double sum = mixture.values().stream().mapToDouble(Double::doubleValue).sum();
        if (!(sum > 0)) {
            throw n.error("mixture", "expected positive weights for at least one source");
        }
        String exhausted = n.string("on_exhausted", "wrap");
        if (!exhausted.equals("wrap") && !exhausted.equals("stop")) {
            throw n.error("on_exhausted", "expected wrap or stop, got '" + exhausted + "'");
        }
        String sampling = n.string("sampling", "packed");
        if (!sampling.equals("packed") && !sampling.equals("aligned")) {
            throw n.error("sampling", "expected packed or aligned, got '" + sampling + "'");
        }
        String loss = n.string("loss", "all");
        if (!loss.equals("all") && !loss.equals("answer")) {
            throw n.error("loss", "expected all or answer, got '" + loss + "'");
        }
        if (loss.equals("answer") && !sampling.equals("aligned")) {
            throw n.error("loss", "answer (the loss on each document's last token) needs sampling: aligned");
        }
        int micro = (int) n.integer("micro_batch", 0L, 0, batch);
        Recompute recompute = null;
        if (n.has("recompute")) {
            String r = n.string("recompute", "");
            try {
                recompute = Recompute.parse(r);
            } catch (IllegalArgumentException e) {
                throw n.error("recompute", "expected none, layer or loop_step, got '" + r + "'");
            }
        }
        int chunk = (int) n.integer("recompute_chunk", 4096L, 0, 1 << 30);
        String objective = n.string("objective", "stage1");
        if (!objective.equals("stage1") && !objective.equals("stage2")) {
            throw n.error("objective", "expected stage1 or stage2, got '" + objective + "'");
        }
        n.noOthers();
        LoopConfig m;
        try {
            m = new LoopConfig(prev.vocab(), prev.hidden(), layers, prev.heads(), prev.ffn(), t, rope, prev.normEps(),
                    beta, prev.initStd(), prev.seed());
        } catch (IllegalArgumentException e) {
            throw n.error("recurrent_steps", e.getMessage());
        }
        return new Stage(name, index, first, steps, seqLen, batch, batchStart, ramp, m,
                new Stage.Lr(peak, warm, sched, minRatio, decay), Map.copyOf(mixture), exhausted, objective.equals("stage2"), up,
                micro, recompute, chunk,
                new Sampler.Layout(sampling.equals("aligned"), loss.equals("answer")));
    }
    /**
     * {start, end} sequences per worker of a ramp (equal without one): {@code batch_per_worker} and {@code batch_start}
     * as given, or {@code global_batch} and {@code global_batch_start} divided by W, a W that does not divide them (or
     * that leaves a worker without a sequence) an error naming the stage and the W that would.
     */
    static int[] batch(Node n, String name, int seqLen, int workers) {
        if (!n.has("global_batch")) {
            if (n.has("global_batch_start")) {
                throw n.error("global_batch_start", "a ramp's global start needs global_batch (not batch_per_worker)");
            }
            if (!n.has("batch_per_worker")) {
                throw n.error("batch_per_worker", "required: batch_per_worker (sequences per worker) or global_batch"
                        + " ('<n> tokens' or '<n> sequences' over all workers)");
            }
            int end = (int) n.integer("batch_per_worker", null, 1, 1 << 20);
            return new int[] {(int) n.integer("batch_start", (long) end, 1, 1 << 20), end};
        }
        for (String per : new String[] {"batch_per_worker", "batch_start"}) {
            if (n.has(per)) {
                throw n.error(per, "give either global_batch (and global_batch_start) or batch_per_worker (and"
                        + " batch_start), not both");
            }
        }
        long end = GlobalBatch.parse(n, "global_batch").sequences(n, "global_batch", seqLen);
        long start = n.has("global_batch_start")
                ? GlobalBatch.parse(n, "global_batch_start").sequences(n, "global_batch_start", seqLen) : end;
        long all = gcd(start, end);
        for (String key : new String[] {"global_batch_start", "global_batch"}) {
            if (!n.has(key)) {
                continue;
            }
            long g = key.equals("global_batch") ? end : start;
            if (g % workers != 0) {
                throw n.error(key, String.format(java.util.Locale.ROOT, "stage %s: %d sequences of %d tokens do not"
                        + " split over W = %d workers%s; valid W: %s", name, g, seqLen, workers,
                        g < workers ? " (less than one sequence each)" : "", GlobalBatch.validWorkers(all, workers)));
            }
            if (g / workers > 1 << 20) {
                throw n.error(key, "stage " + name + ": " + g / workers + " sequences per worker at W = " + workers
                        + ", more than 2^20");
            }
        }
        return new int[] {(int) (start / workers), (int) (end / workers)};
    }

    private static long gcd(long a, long b) {
        return b == 0 ? a : gcd(b, a % b);
    }
}
