package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.data.SyntheticCorpus;
import io.ouro.worker.data.TokenSource;

import java.util.HashMap;
import java.util.Map;

/** The run's token stream on an executor, opened once per JVM and shared by its tasks. */
final class DataSources {

    private static final Map<String, TokenSource> OPEN = new HashMap<>();

    private DataSources() {
    }

    static synchronized TokenSource open(TrainConfig cfg) {
        TrainConfig.Data d = cfg.data();
        String key = d.synthetic() ? "synthetic:" + cfg.model().vocab() + ":" + d.syntheticTokens() + ":"
                + d.syntheticSeed() : "manifest:" + d.manifest();
        TokenSource s = OPEN.get(key);
        if (s == null) {
            if (d.synthetic()) {
                s = SyntheticCorpus.generate(cfg.model().vocab(), (int) d.syntheticTokens(), d.syntheticSeed());
            } else {
                s = ManifestSource.open(d.manifest(), cfg.model().vocab());
            }
            OPEN.put(key, s);
        }
        return s;
    }
}
