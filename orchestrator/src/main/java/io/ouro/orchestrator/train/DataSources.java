package io.ouro.orchestrator.train;

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

    static synchronized TokenSource open(TrainConfig cfg, TrainConfig.Source src) {
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
    static Sampler sampler(TrainConfig cfg, TrainConfig.Stage st) {
        List<TokenSource> list = new ArrayList<>();
        List<String> names = new ArrayList<>();
        double[] w = new double[cfg.sources().size()];
        for (int j = 0; j < w.length; j++) {
            TrainConfig.Source s = cfg.sources().get(j);
            w[j] = st.mixture().getOrDefault(s.name(), 0.0);
            list.add(w[j] > 0 ? open(cfg, s) : new io.ouro.worker.data.ArrayTokenSource(new int[st.seqLen() + 1], s.name()));
            names.add(s.name());
        }
        return new Sampler(list, names, w, st.seqLen(), cfg.run().seed(), st.index(), st.onExhausted().equals("stop"));
    }

    /** The stage's index of the first sample of global step {@code step} (the batch may ramp). */
    static long firstSample(TrainConfig cfg, TrainConfig.Stage st, long step) {
        long n = 0;
        for (long s = st.firstStep(); s < step; s++) {
            n += (long) cfg.train().workers() * st.batchAt(s);
        }
        return n;
    }
}
