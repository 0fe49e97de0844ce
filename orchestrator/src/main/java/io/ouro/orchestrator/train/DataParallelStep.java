package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.backend.TrainingBackend;
import io.ouro.orchestrator.checkpoint.FlatIndex;
import io.ouro.worker.comm.RingGroup;
import io.ouro.worker.model.GradClip;
import io.ouro.worker.model.GradientReady;
import io.ouro.worker.model.TokenBatch;
import io.ouro.worker.data.Sampler;
import io.ouro.worker.model.NonFiniteException;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParameterReadiness;
import io.ouro.worker.model.StepReport;

/**
 * One rank's data-parallel training step, free of Spark: forward and backward on its slice of the global
 * batch, the token-weighted gradients exchanged bucket by bucket while the backward goes on
 * ({@link GradientExchange}), {@link StepSums} all-reduced, then clipping, the spike/NaN guard (every rank decides
 * alike from the same sums and norm) and AdamW: on every parameter (replicated optimizer), or with ZeRO-1 on this
 * rank's slice, followed by an all-gather of the updated parameters, which runs behind the next step's forward: that
 * forward waits for each group of parameters just before its first read ({@link ParameterReadiness}). Call
 * {@link #finish} before anything else reads the backend's parameters (checkpoints, the returned weights) and before
 * the ring closes. Every call a step makes into the {@link TrainingBackend} is in this class or the exchange. Also
 * the forward-only evaluation of the held-out split.
 */
final class DataParallelStep {

    /**
     * Tests only; false in production. Waits for ZeRO-1's all-gather at the end of the step that starts it, the order
     * before the overlap, which the overlapped order must equal bit for bit.
     */
    static volatile boolean gatherAtStepEnd;

    private final TrainingBackend b;
    private final RingGroup rings;
    private final Stage stage;
    private final double clip;
    private final SpikeGuard guard;
    private final long injectNonFiniteAt;
    private final GradientExchange exchange;

    /**
     * @param clip              global gradient-norm limit, 0 for none
     * @param injectNonFiniteAt a step at which the last rank behaves as if its loss were non-finite (tests), or -1
     * @param bucketFloats      the largest gradient bucket
     * @param shardOptimizer    ZeRO-1: this rank keeps (and updates) the moments of its range of the flat layout
     *                          only ({@link #owners}); the backend must have been sharded alike
     */
    DataParallelStep(TrainingBackend b, RingGroup rings, Stage stage, double clip, SpikeGuard guard,
                     long injectNonFiniteAt, int bucketFloats, boolean shardOptimizer, long timeoutMillis) {
        this.b = b;
        this.rings = rings;
        this.stage = stage;
        this.clip = clip;
        this.guard = guard;
        this.injectNonFiniteAt = injectNonFiniteAt;
        long total = b.layout().totalSize();
        long trainFrom = stage.stageTwo() ? b.layout().gateWeight().offset() : 0;
        this.exchange = rings.worldSize() == 1 ? null : new GradientExchange(b, rings, trainFrom, total, bucketFloats,
                shardOptimizer ? owners(total, rings.worldSize()) : null, timeoutMillis);
    }

    /**
     * ZeRO-1's ranges: rank r keeps the moments of parameters [owners[r], owners[r+1]) of the flat layout, the range
     * it also writes to checkpoints ({@link FlatIndex#range}).
     */
    static long[] owners(long total, int world) {
        long[] o = new long[world + 1];
        for (int r = 0; r <= world; r++) {
            o[r] = FlatIndex.bound(total, r, world);
        }
        return o;
    }

    /** What one step did on this rank: the global figures, and the tokens of this rank's slice. */
    record Outcome(StepMetrics metrics, long localTokens) {
    }

    /** Global step {@code s} on this rank's {@code batch}; {@code dataWaitNanos} is how long the batch kept it waiting. */
    Outcome step(long s, Sampler.Batch batch, long dataWaitNanos) {
        long t0 = System.nanoTime();
        Objective obj = objective(stage);
        int loopSteps = stage.model().steps();
        boolean inject = s == injectNonFiniteAt && rings.rank() == rings.worldSize() - 1;
        long waited0 = exchange == null ? 0 : exchange.gatherWaitNanos();
        b.zeroGradients();
        StepReport rep = null;
        if (exchange != null) {
            // the token weighting: the global objective is the mean over every target position of the global batch
            exchange.begin(inject ? 0 : TokenBatch.validate(batch.tokens(), batch.targets(), batch.rows(),
                    batch.seqLen(), stage.model().vocab()));
        }
        if (!inject) {
            try {
                rep = b.forwardBackward(batch.tokens(), batch.targets(), obj,
                        exchange == null ? ParameterReadiness.NONE : exchange::awaitParameters,
                        exchange == null ? GradientReady.NONE : exchange::ready);
            } catch (NonFiniteException e) {
                rep = null;
            }
        }
        if (exchange != null) {
            // a non-finite rank still takes part in every call, with nothing (its parameters all in first)
            exchange.endBackward(rep == null);
        }
        double[] gather = exchange == null ? new double[] {Double.NaN, Double.NaN} : exchange.takeGatherFigures();
        long c1 = System.nanoTime();
        StepSums sums = StepSums.local(rep, loopSteps);
        rings.allReduceSum(sums.values, 0, sums.values.length);
        double[] ex = exchange == null ? new double[] {0, Double.NaN} : exchange.await();
        long c2 = System.nanoTime();
        double loss = sums.loss(), norm = Double.NaN;
        String skipped, note = null;
        if (sums.nonFiniteRanks() > 0) {
            skipped = "non-finite loss on " + sums.nonFiniteRanks() + " rank(s)";
        } else {
            double maxNorm = clip > 0 ? clip : Double.POSITIVE_INFINITY;
            // the exchanged gradient is the token-weighted sum: divided by the tokens it is the mean
            if (exchange == null) {
                norm = b.clipGradients(maxNorm, 1);
            } else if (!exchange.sharded()) {
                exchange.writeBack();
                norm = b.clipGradients(maxNorm, sums.tokens());
            } else {
                exchange.divideOwned(sums.tokens());
                float[] ss = {(float) exchange.ownedSumSquares()};
                rings.allReduceSum(ss, 0, 1);
                norm = Math.sqrt(ss[0]);
                double coef = GradClip.coefficient(norm, maxNorm);
                exchange.writeOwned(coef < 1 ? (float) coef : 1f);
            }
            skipped = guard.check(loss, norm);
            note = guard.takeNote();
        }
        double lr = stage.lrAt(s);
        if (skipped == null) {
            b.adamw(lr, stage.stageTwo() ? b.layout()::isGate : t -> true);
            if (exchange != null && exchange.sharded()) {
                exchange.startGather();
                if (gatherAtStepEnd) {
                    exchange.finishGather();
                }
            }
        }
        long c3 = System.nanoTime();
        double ms = 1e-6;
        // communication the step waited for: the exchange after the backward, and ZeRO-1's parameter all-gather
        // (the previous update's, which this forward waited for group by group)
        long waited = exchange == null ? 0 : exchange.gatherWaitNanos() - waited0;
        StepMetrics m = new StepMetrics(s, loss, sums.stepCe(), sums.meanExit(), norm, lr, (long) sums.tokens(),
                (c3 - t0 + dataWaitNanos) * ms, ((c1 - t0) + (c3 - c2) - waited) * ms, (c2 - c1 + waited) * ms,
                dataWaitNanos * ms, ex[0], ex[1], gather[0], gather[1], skipped, note);
        return new Outcome(m, rep == null ? 0 : rep.tokens());
    }

    /**
     * The held-out split on the current weights: {@code batches} global batches of {@code batchPerRank}
     * sequences per rank, forward only, token-weighted CE per loop step and mean exit all-reduced.
     */
    Validation validate(Sampler heldOut, int batches, int batchPerRank) {
        finish();
        int g = rings.worldSize() * batchPerRank;
        StepSums acc = StepSums.zero(stage.model().steps());
        for (int k = 0; k < batches; k++) {
            Sampler.Batch bt = heldOut.batch(k, (long) k * g, g, rings.rank(), rings.worldSize());
            StepReport r;
            try {
                r = b.forward(bt.tokens(), bt.targets(), objective(stage));
            } catch (NonFiniteException e) {
                continue; // counted as no tokens; a NaN model shows as a missing validation figure
            }
            acc.add(StepSums.local(r, stage.model().steps()));
        }
        rings.allReduceSum(acc.values, 0, acc.values.length);
        return new Validation(acc.stepCe(), acc.meanExit(), (long) acc.tokens());
    }

    /**
     * Writes the parameters of an all-gather still in flight into the backend (ZeRO-1), so that they are current for
     * whatever reads them next; at once when none is.
     */
    void finish() {
        if (exchange != null) {
            exchange.finishGather();
        }
    }

    static Objective objective(Stage stage) {
        return stage.stageTwo() ? Objective.stageTwo() : Objective.stageOne(stage.model().beta());
    }
}
