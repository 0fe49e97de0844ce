package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.backend.TrainingBackend;
import io.ouro.worker.comm.RingAllReduce;
import io.ouro.worker.data.Sampler;
import io.ouro.worker.model.NonFiniteException;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.TensorView;

/**
 * One rank's data-parallel training step, free of Spark: forward and backward on its slice of the global
 * batch, the token-weighted gradients and {@link StepSums} all-reduced over the ring, then clipping, the
 * spike/NaN guard (every rank decides alike from the same sums) and AdamW. Every call a step makes into
 * the {@link TrainingBackend} is in this class. Also the forward-only evaluation of the held-out split.
 */
final class DataParallelStep {

    private final TrainingBackend b;
    private final RingAllReduce ring;
    private final TrainConfig.Stage stage;
    private final double clip;
    private final SpikeGuard guard;
    private final long injectNonFiniteAt;

    /**
     * @param clip              global gradient-norm limit, 0 for none
     * @param injectNonFiniteAt a step at which the last rank behaves as if its loss were non-finite (tests), or -1
     */
    DataParallelStep(TrainingBackend b, RingAllReduce ring, TrainConfig.Stage stage, double clip, SpikeGuard guard,
                     long injectNonFiniteAt) {
        this.b = b;
        this.ring = ring;
        this.stage = stage;
        this.clip = clip;
        this.guard = guard;
        this.injectNonFiniteAt = injectNonFiniteAt;
    }

    /** What one step did on this rank: the global figures, and the tokens of this rank's slice. */
    record Outcome(StepMetrics metrics, long localTokens) {
    }

    /** Global step {@code s} on this rank's {@code batch}; {@code dataWaitNanos} is how long the batch kept it waiting. */
    Outcome step(long s, Sampler.Batch batch, long dataWaitNanos) {
        long t0 = System.nanoTime();
        Objective obj = objective(stage);
        int loopSteps = stage.model().steps();
        b.zeroGradients();
        StepReport rep = null;
        if (!(s == injectNonFiniteAt && ring.rank() == ring.worldSize() - 1)) {
            try {
                rep = b.forwardBackward(batch.tokens(), batch.targets(), obj);
            } catch (NonFiniteException e) {
                rep = null;
            }
        }
        float[] g = b.gradients();
        // token-weighted: the global objective is the mean over every target position of the global batch; a
        // non-finite rank still takes part in the all-reduce, with nothing
        float w = rep == null ? 0 : rep.tokens();
        for (int i = 0; i < g.length; i++) {
            g[i] *= w;
        }
        StepSums sums = StepSums.local(rep, loopSteps);
        long c1 = System.nanoTime();
        if (stage.stageTwo()) {
            // Stage II trains the exit gate only: the frozen LM's gradients are zero and are not all-reduced
            for (TensorView t : new TensorView[] {b.layout().gateWeight(), b.layout().gateBias()}) {
                ring.allReduceSum(g, t.off(), (int) t.size());
            }
        } else {
            ring.allReduceSum(g, 0, g.length);
        }
        ring.allReduceSum(sums.values, 0, sums.values.length);
        long c2 = System.nanoTime();
        double loss = sums.loss(), norm = Double.NaN;
        String skipped, note = null;
        if (sums.nonFiniteRanks() > 0) {
            skipped = "non-finite loss on " + sums.nonFiniteRanks() + " rank(s)";
        } else {
            float total = sums.tokens();
            for (int i = 0; i < g.length; i++) {
                g[i] /= total;
            }
            b.setGradients(g);
            norm = b.clipGradients(clip > 0 ? clip : Double.POSITIVE_INFINITY);
            skipped = guard.check(loss, norm);
            note = guard.takeNote();
        }
        double lr = stage.lrAt(s);
        if (skipped == null) {
            b.adamw(lr, stage.stageTwo() ? b.layout()::isGate : t -> true);
        }
        long c3 = System.nanoTime();
        double ms = 1e-6;
        StepMetrics m = new StepMetrics(s, loss, sums.stepCe(), sums.meanExit(), norm, lr, (long) sums.tokens(),
                (c3 - t0 + dataWaitNanos) * ms, ((c1 - t0) + (c3 - c2)) * ms, (c2 - c1) * ms, dataWaitNanos * ms,
                skipped, note);
        return new Outcome(m, rep == null ? 0 : rep.tokens());
    }

    /**
     * The held-out split on the current weights: {@code batches} global batches of {@code batchPerRank}
     * sequences per rank, forward only, token-weighted CE per loop step and mean exit all-reduced.
     */
    Validation validate(Sampler heldOut, int batches, int batchPerRank) {
        int g = ring.worldSize() * batchPerRank;
        StepSums acc = StepSums.zero(stage.model().steps());
        for (int k = 0; k < batches; k++) {
            Sampler.Batch bt = heldOut.batch(k, (long) k * g, g, ring.rank(), ring.worldSize());
            StepReport r;
            try {
                r = b.forward(bt.tokens(), bt.targets(), objective(stage));
            } catch (NonFiniteException e) {
                continue; // counted as no tokens; a NaN model shows as a missing validation figure
            }
            acc.add(StepSums.local(r, stage.model().steps()));
        }
        ring.allReduceSum(acc.values, 0, acc.values.length);
        return new Validation(acc.stepCe(), acc.meanExit(), (long) acc.tokens());
    }

    static Objective objective(TrainConfig.Stage stage) {
        return stage.stageTwo() ? Objective.stageTwo() : Objective.stageOne(stage.model().beta());
    }
}
