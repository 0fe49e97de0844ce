package io.ouro.orchestrator.checkpoint;

/** The three model-shaped parts of a checkpoint, under the names they carry in files. */
public enum StateKind {
    MODEL("model"), EXP_AVG("exp_avg"), EXP_AVG_SQ("exp_avg_sq");

    public final String label;

    StateKind(String label) {
        this.label = label;
    }
}
