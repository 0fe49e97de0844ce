package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.data.Sampler;
import io.ouro.worker.data.SyntheticCorpus;
import io.ouro.worker.data.TokenSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The run's token sources on an executor (or the driver), opened once per JVM and shared by its tasks. */
final class DataSources {

    private static final Map<String, TokenSource> OPEN = new HashMap<>();

    private DataSources() {
    }

    /** Forgets the opened sources (a test that changes files between runs in one JVM). */
    static synchronized void clear() {
        OPEN.clear();
    }

    /** The training side of a source: all of it, or what the held-out split leaves when validation is on. */
    static synchronized TokenSource open(TrainConfig cfg, TrainConfig.Source src) {
        return split(cfg, src, false);
    }

    /** The held-out side of a source. */
    static synchronized TokenSource heldOut(TrainConfig cfg, TrainConfig.Source src) {
        return split(cfg, src, true);
    }

    private static TokenSource split(TrainConfig cfg, TrainConfig.Source src, boolean heldOut) {
        var v = cfg.train().validation();
        TokenSource whole = whole(cfg, src);
        if (v.everySteps() <= 0) {
            if (heldOut) {
                throw new IllegalStateException("validation is off");
            }
            return whole;
        }
        String key = "split:" + src + ":" + v.holdout() + ":" + cfg.run().seed();
        TokenSource t = OPEN.get(key + ":train");
        if (t == null) {
            var parts = io.ouro.worker.data.HeldOutSplit.split(whole, v.holdout(), cfg.run().seed());
            OPEN.put(key + ":train", parts[0]);
            OPEN.put(key + ":val", parts[1]);
        }
        return OPEN.get(key + (heldOut ? ":val" : ":train"));
    }

    private static TokenSource whole(TrainConfig cfg, TrainConfig.Source src) {
        String key = src.synthetic() ? "synthetic:" + cfg.model().vocab() + ":" + src.syntheticTokens() + ":"
                + src.syntheticSeed() : "manifest:" + src.manifest();
        TokenSource s = OPEN.get(key);
        if (s == null) {
            if (src.synthetic()) {
                s = SyntheticCorpus.generate(cfg.model().vocab(), (int) src.syntheticTokens(), src.syntheticSeed());
            } else {
                s = ManifestSource.open(src.manifest(), cfg.model().vocab());
            }
            OPEN.put(key, s);
        }
        return s;
    }

    /** The sampler of a stage: its mixture over the run's sources, its sequence length. */
    static Sampler sampler(TrainConfig cfg, Stage st) {
        return sampler(cfg, st, false);
    }

    /** The sampler of a stage over the training side, or over the held-out side. */
    static Sampler sampler(TrainConfig cfg, Stage st, boolean heldOut) {
        List<TokenSource> list = new ArrayList<>();
        List<String> names = new ArrayList<>();
        double[] w = new double[cfg.sources().size()];
        for (int j = 0; j < w.length; j++) {
            TrainConfig.Source s = cfg.sources().get(j);
            w[j] = st.mixture().getOrDefault(s.name(), 0.0);
            TokenSource src = w[j] > 0 ? (heldOut ? heldOut(cfg, s) : open(cfg, s)) : null;
            if (heldOut && src != null && src.tokens() < st.seqLen() + 1L) {
                w[j] = 0; // a small source with no held-out document: validated on the others
            }
            list.add(w[j] > 0 ? src : new io.ouro.worker.data.ArrayTokenSource(new int[st.seqLen() + 1], s.name()));
            names.add(s.name());
        }
        if (heldOut && java.util.Arrays.stream(w).allMatch(x -> x <= 0)) {
            throw new IllegalStateException("validation: the held-out split of stage " + st.name()
                    + " holds no full sequence of " + (st.seqLen() + 1) + " tokens; raise train.validation.holdout");
        }
        return new Sampler(list, names, w, st.seqLen(), cfg.run().seed() + (heldOut ? 0x7A11DL : 0), st.index(),
                !heldOut && st.onExhausted().equals("stop"), st.layout());
    }

    /** The stage's index of the first sample of global step {@code step} (the batch may ramp). */
    static long firstSample(TrainConfig cfg, Stage st, long step) {
        long n = 0;
        for (long s = st.firstStep(); s < step; s++) {
            n += (long) cfg.train().workers() * st.batchAt(s);
        }
        return n;
    }
}
