package io.ouro.worker.model;

/**
 * The training objective (looplm-spec §3).
 *
 * <ul>
 *   <li>Stage I: per token {@code sum_t p_t CE_t - beta H(p)}, averaged over the tokens with a target.
 *       Gradients flow into the LM and the exit gate.</li>
 *   <li>Stage II: {@code (1/T) sum_{t=2..T} mean_tokens BCE(w_t, 1 - lambda_t)} with
 *       {@code w_t = sigmoid(k (max(0, CE_{t-1} - CE_t) - gamma))} and the per-step losses detached;
 *       the LM is frozen, only the exit gate gets gradients.</li>
 * </ul>
 */
public record Objective(Stage stage, double beta, double k, double gamma) {

    public enum Stage { STAGE_I, STAGE_II }

    public Objective {
        if (stage == null) {
            throw new IllegalArgumentException("Objective.stage: expected STAGE_I or STAGE_II, got null");
        }
        if (!Double.isFinite(beta) || beta < 0) {
            throw new IllegalArgumentException("Objective.beta: expected a finite value >= 0, got " + beta);
        }
        if (!Double.isFinite(k) || k <= 0) {
            throw new IllegalArgumentException("Objective.k: expected a finite value > 0, got " + k);
        }
        if (!Double.isFinite(gamma)) {
            throw new IllegalArgumentException("Objective.gamma: expected a finite value, got " + gamma);
        }
    }

    public static Objective stageOne(double beta) {
        return new Objective(Stage.STAGE_I, beta, 50, 0.005);
    }

    /** Stage II with the paper's k = 50, gamma = 0.005. */
    public static Objective stageTwo() {
        return stageTwo(50, 0.005);
    }

    public static Objective stageTwo(double k, double gamma) {
        return new Objective(Stage.STAGE_II, 0, k, gamma);
    }

    public boolean trainsLm() {
        return stage == Stage.STAGE_I;
    }
}
