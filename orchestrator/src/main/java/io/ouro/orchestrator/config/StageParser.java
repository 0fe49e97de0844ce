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
        int batch = (int) n.integer("batch_per_worker", null, 1, 1 << 20);
        int batchStart = (int) n.integer("batch_start", (long) batch, 1, 1 << 20);
        long ramp = n.integer("ramp_steps", 0L, 0, Long.MAX_VALUE / 4);
        long steps;
        if (n.has("tokens")) {
            if (n.has("steps")) {
                throw n.error("tokens", "give either steps or tokens, not both");
            }
            long tokens = n.integer("tokens", null, 1, Long.MAX_VALUE / 4);
            steps = Math.max(1, tokens / ((long) batch * train.workers() * seqLen));
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
}
