package io.ouro.orchestrator.train;

final class DataSourcesReset {
    private DataSourcesReset() {
    }

    static void clear() {
        DataSources.clear();
    }
}
