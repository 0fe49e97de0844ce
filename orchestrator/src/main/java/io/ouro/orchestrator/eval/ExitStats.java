package io.ouro.orchestrator.eval;

import io.ouro.worker.infer.ExitPolicy;

/**
 * One token's exit distribution and Q-exit step from the gate's lambdas (looplm-spec §2 and §5), for the evaluation
 * tools that read the lambdas of a batched forward ({@code ReferenceModel.exitLambdas()}, laid out (T, N)). The Q-exit
 * decision itself is {@link ExitPolicy#exitsAfter}, the one the decoder uses, so evaluation and generation agree.
 */
final class ExitStats {

    private ExitStats() {
    }

    /** p_t of row {@code row} into {@code p} (length T): lambda_t S_{t-1} for t < T, the remaining mass at T. */
    static void distribution(float[] lambdas, int n, int row, double[] p) {
        int steps = p.length;
        double survive = 1;
        for (int t = 0; t < steps; t++) {
            double l = lambdas[t * n + row];
            p[t] = t + 1 < steps ? l * survive : survive;
            survive *= 1 - l;
        }
    }

    /** The 0-based step at which row {@code row} exits under {@code policy}: the first whose exit CDF reaches q. */
    static int exitStep(float[] lambdas, int n, int row, int steps, ExitPolicy policy) {
        double survive = 1;
        for (int t = 0; t < steps; t++) {
            survive *= 1 - lambdas[t * n + row];
            if (policy.exitsAfter(t, steps, 1 - survive)) {
                return t;
            }
        }
        throw new IllegalStateException("unreachable: the last step always exits");
    }
}
