package io.ouro.worker.model;

/** AdamW's settings; {@link #ouro()} is the recipe's (beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1). */
public record AdamWConfig(double beta1, double beta2, double eps, double weightDecay, DecayPolicy decay) {

    public static AdamWConfig ouro() {
        return new AdamWConfig(0.9, 0.95, 1e-8, 0.1, DecayPolicy.defaults());
    }

    public AdamW create(ParamLayout layout) {
        return new AdamW(layout, beta1, beta2, eps, weightDecay, decay);
    }

    /** Keeping the moments of parameters [from, to) only (ZeRO-1). */
    public AdamW create(ParamLayout layout, long from, long to) {
        return new AdamW(layout, beta1, beta2, eps, weightDecay, decay, from, to);
    }
}
