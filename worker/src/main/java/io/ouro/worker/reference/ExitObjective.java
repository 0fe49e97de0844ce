package io.ouro.worker.reference;

/**
 * The exit distribution over recurrent steps and the two training objectives (looplm-spec §2-3),
 * per token, from the gate logits z_t and the per-step cross-entropies CE_t. Arrays are (T,N):
 * element {@code t * N + n}. Everything is computed in log space: {@code log lambda = -softplus(-z)},
 * {@code log(1 - lambda) = -softplus(z)}.
 */
final class ExitObjective {

    private ExitObjective() {
    }

    static double softplus(double x) {
        return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
    }

    static double sigmoid(double x) {
        return 1.0 / (1.0 + Math.exp(-x));
    }

    // z (T,N) -> p (T,N): p_t = lambda_t S_{t-1} for t < T, p_T = S_{T-1}
    static void distribution(float[] p, float[] z, int[] targets, int steps, int n) {
        double[] logp = new double[steps];
        for (int r = 0; r < n; r++) {
            logDistribution(logp, z, r, steps, n);
            for (int t = 0; t < steps; t++) {
                p[t * n + r] = targets[r] < 0 ? 0 : (float) Math.exp(logp[t]);
            }
        }
    }

    private static void logDistribution(double[] logp, float[] z, int r, int steps, int n) {
        double logSurvive = 0;
        for (int t = 0; t < steps - 1; t++) {
            double zt = z[t * n + r];
            logp[t] = -softplus(-zt) + logSurvive;
            logSurvive += -softplus(zt);
        }
        logp[steps - 1] = logSurvive;
    }

    /**
     * Stage I: {@code L = (1/Ntok) sum_n [sum_t p_t CE_t + beta sum_t p_t log p_t]}.
     * Writes dL/dz into dz and dL/dCE into dce (both (T,N), overwritten) and returns L.
     */
    static double stageOne(float[] dz, float[] dce, float[] z, float[] ce, int[] targets,
                           int steps, int n, int tokens, double beta) {
        double[] logp = new double[steps];
        double[] g = new double[steps];
        double total = 0;
        double inv = 1.0 / tokens;
        for (int r = 0; r < n; r++) {
            if (targets[r] < 0) {
                for (int t = 0; t < steps; t++) {
                    dz[t * n + r] = 0;
                    dce[t * n + r] = 0;
                }
                continue;
            }
            logDistribution(logp, z, r, steps, n);
            double loss = 0;
            for (int t = 0; t < steps; t++) {
                double pt = Math.exp(logp[t]);
                double c = ce[t * n + r];
                loss += pt * c + beta * pt * logp[t];
                g[t] = (c + beta * (logp[t] + 1)) * pt;   // dL/dlog p_t
                dce[t * n + r] = (float) (pt * inv);
            }
            total += loss;
            // d log p_t / d z_j: (1 - lambda_j) if t == j < T, -lambda_j if t > j, 0 otherwise
            double tail = g[steps - 1];
            dz[(steps - 1) * n + r] = 0;
            for (int j = steps - 2; j >= 0; j--) {
                double lam = sigmoid(z[j * n + r]);
                dz[j * n + r] = (float) ((g[j] * (1 - lam) - lam * tail) * inv);
                tail += g[j];
            }
        }
        return total * inv;
    }

    /**
     * Stage II: {@code L = (1/T) sum_{t=2..T} mean_n BCE(w_t, 1 - lambda_t)} with
     * {@code w_t = sigmoid(k (max(0, CE_{t-1} - CE_t) - gamma))}; CE is treated as a constant.
     * Writes dL/dz into dz ((T,N), overwritten) and returns L.
     */
    static double stageTwo(float[] dz, float[] z, float[] ce, int[] targets, int steps, int n, int tokens,
                           double k, double gamma) {
        double total = 0;
        double inv = 1.0 / ((double) tokens * steps);
        for (int r = 0; r < n; r++) {
            dz[r] = 0;
            for (int t = 1; t < steps; t++) {
                int i = t * n + r;
                if (targets[r] < 0) {
                    dz[i] = 0;
                    continue;
                }
                double improvement = Math.max(0, ce[i - n] - ce[i]);
                double w = sigmoid(k * (improvement - gamma));
                double zt = z[i];
                // BCE(w, 1 - lambda) = -(w log(1 - lambda) + (1 - w) log lambda)
                total += w * softplus(zt) + (1 - w) * softplus(-zt);
                dz[i] = (float) ((sigmoid(zt) - 1 + w) * inv);
            }
        }
        return total * inv;
    }
}
