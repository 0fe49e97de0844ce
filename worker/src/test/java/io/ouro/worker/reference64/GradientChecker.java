package io.ouro.worker.reference64;

import java.util.function.DoubleSupplier;

/**
 * Central finite differences in float64 against an analytic gradient. The fourth-order five-point
 * stencil keeps both the truncation error (O(h^4)) and the rounding error (O(eps/h)) near 1e-12, so
 * a 1e-6 tolerance separates a correct backward pass from a wrong one with a wide margin.
 */
final class GradientChecker {

    static final double H = 1e-4;

    private GradientChecker() {
    }

    /**
     * Largest relative error over {@code x[off, off+len)}: {@code |a - n| / max(|n|, 1e-4 max|n|, 1e-12)}
     * where n is the numerical derivative of {@code loss} and a the analytic one. Restores x.
     */
    static double maxRelativeError(double[] x, int off, int len, double[] analytic, int aOff, DoubleSupplier loss) {
        double[] numeric = new double[len];
        double scale = 0;
        for (int i = 0; i < len; i++) {
            double keep = x[off + i];
            x[off + i] = keep + 2 * H;
            double up2 = loss.getAsDouble();
            x[off + i] = keep + H;
            double up1 = loss.getAsDouble();
            x[off + i] = keep - H;
            double down1 = loss.getAsDouble();
            x[off + i] = keep - 2 * H;
            double down2 = loss.getAsDouble();
            x[off + i] = keep;
            numeric[i] = (8 * (up1 - down1) - (up2 - down2)) / (12 * H);
            scale = Math.max(scale, Math.abs(numeric[i]));
        }
        double worst = 0;
        for (int i = 0; i < len; i++) {
            double denom = Math.max(Math.abs(numeric[i]), Math.max(1e-4 * scale, 1e-12));
            worst = Math.max(worst, Math.abs(analytic[aOff + i] - numeric[i]) / denom);
        }
        return worst;
    }
}
