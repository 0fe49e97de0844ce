package io.ouro.orchestrator.train;

import io.ouro.orchestrator.checkpoint.BackgroundWrites;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.checkpoint.FlatIndex;
import io.ouro.orchestrator.checkpoint.FlatTensors;
import io.ouro.orchestrator.checkpoint.ShardSnapshot;
import io.ouro.orchestrator.checkpoint.ShardWriter;
import io.ouro.orchestrator.checkpoint.StateKind;
import io.ouro.worker.model.OptimizerState;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.backend.TrainingBackend;
import io.ouro.worker.comm.RingAllReduce;
import io.ouro.worker.comm.RingConfig;
import io.ouro.worker.data.Prefetcher;
import io.ouro.worker.data.Sampler;
import io.ouro.worker.data.TokenSource;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.StepReport;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.SparkEnv;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.util.LongAccumulator;
import scala.collection.Iterator;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;

import java.io.Serializable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * One worker's part of a segment (steps {@code [first, last)}), run as a task of a Spark barrier stage:
 * takes the resident model state (or initialises it at step 0), joins the ring of the stage's W tasks,
 * and for each step reads its slice of the global batch (prefetched), runs forward and backward on its
 * device, all-reduces the token-weighted gradients and metrics, clips, and applies AdamW. Every rank
 * ends the segment with the same parameters.
 */
public final class SegmentTask extends AbstractFunction1<Iterator<Integer>, Iterator<SegmentResult>>
        implements Serializable {

    private static final long serialVersionUID = 1L;

    private final TrainConfig cfg;
    private final String runId;
    private final String stage;
    private final byte[] secret;
    private final long first, last;
    private final boolean returnParameters;
    private final LongAccumulator tokensAcc, stepsAcc;
    private final long injectFailureAt;
    private final String checkpointTag;
    private transient long localTokens;
    private transient SpikeGuard guard;
    private final LongAccumulator skippedAcc;

    public SegmentTask(TrainConfig cfg, String runId, String stage, byte[] secret, long first, long last,
                       boolean returnParameters, LongAccumulator tokensAcc, LongAccumulator stepsAcc,
                       long injectFailureAt, LongAccumulator skippedAcc, String checkpointTag) {
        this.checkpointTag = checkpointTag;
        this.skippedAcc = skippedAcc;
        this.injectFailureAt = injectFailureAt;
        this.cfg = cfg;
        this.runId = runId;
        this.stage = stage;
        this.secret = secret.clone();
        this.first = first;
        this.last = last;
        this.returnParameters = returnParameters;
        this.tokensAcc = tokensAcc;
        this.stepsAcc = stepsAcc;
    }

    @Override
    public Iterator<SegmentResult> apply(Iterator<Integer> partition) {
        try {
            return run();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private Iterator<SegmentResult> run() throws java.io.IOException {
        BarrierTaskContext ctx = BarrierTaskContext.get();
        int rank = ctx.partitionId();
        int world = cfg.train().workers();
        String device = deviceFor(cfg.train().device(), ctx);
        String host = hostOf(ctx, rank);
        TrainConfig.Stage st0 = cfg.stageAt(first);
        int batch = st0.batchAt(first);
        WorkerState.Lease lease = WorkerState.acquire(runId, first, device, cfg, st0, batch);
        WorkerState st = lease.state();
        boolean completed = false;
        try {
            Sampler sampler = DataSources.sampler(cfg, st0);
            int global = world * batch;
            long firstSample = DataSources.firstSample(cfg, st0, first);
            Duration timeout = Duration.ofSeconds(cfg.train().timeoutSeconds());
            RingConfig rc = new RingConfig(rank, world, host, host, secret, timeout, timeout,
                    RingConfig.DEFAULT_CHUNK_BYTES);
            List<StepMetrics> metrics = new ArrayList<>();
            long sent, payload;
            double[][] validation = null;
            try (RingAllReduce ring = RingAllReduce.open(rc, msg -> Arrays.asList(ctx.allGather(msg)));
                 Prefetcher pf = new Prefetcher(step -> sampler.batch(step, firstSample + (step - first) * global,
                         global, rank, world), "rank " + rank, first, last, 2, timeout.toMillis())) {
                for (long s = first; s < last; s++) {
                    if (s == injectFailureAt && rank == world - 1) {
                        throw new IllegalStateException("injected failure at step " + s + " (train.inject_failure_at_step)");
                    }
                    guard = st.guard;
                    StepMetrics m = step(st.backend, ring, pf, s, st0);
                    st.step = s + 1;
                    tokensAcc.add(localTokens);
                    if (rank == 0) {
                        stepsAcc.add(1);
                        metrics.add(m);
                    }
                }
                if (cfg.validateAt(last)) {
                    validation = validate(st.backend, ring, st0, rank, world, batch);
                }
                sent = ring.stats().payloadBytesSent() + ring.stats().framingBytesSent();
                payload = ring.stats().payloadBytesSent();
            }
            float[] params = returnParameters && rank == 0 ? st.backend.parameters() : null;
            String checkpoint = null;
            if (cfg.checkpointAt(last)) {
                checkpoint = writeCheckpoint(st, rank, world, st0, timeout);
            }
            completed = true;
            return CollectionConverters.asScala(List.of(new SegmentResult(rank, executorId(), host,
                    ProcessHandle.current().pid(), st.backend.describe(), lease.source(), sent, payload, metrics,
                    params, checkpoint, validation == null ? null : validation[0], validation == null ? null : validation[1],
                    validation == null ? 0 : (long) validation[2][0])).iterator());
        } finally {
            st.release(completed);
        }
    }

    /**
     * Snapshots this rank's shard of the state on the host and writes it in the background into the
     * checkpoint's pending directory, which the driver commits once every rank's shard is there.
     */
    private String writeCheckpoint(WorkerState st, int rank, int world, TrainConfig.Stage stage, Duration timeout)
            throws java.io.IOException {
        CheckpointStore store = new CheckpointStore(cfg.run().out(), cfg.train().keepCheckpoints(),
                new org.apache.hadoop.conf.Configuration());
        org.apache.hadoop.fs.Path dir = store.pendingDir(last, checkpointTag);
        FlatIndex index = new FlatIndex(st.backend.layout().tensors());
        OptimizerState opt = st.backend.optimizerState();
        ShardSnapshot snap = new ShardSnapshot(index, rank, world, Map.of(StateKind.MODEL,
                FlatTensors.source(st.backend.parameters()), StateKind.EXP_AVG, FlatTensors.source(opt.m()),
                StateKind.EXP_AVG_SQ, FlatTensors.source(opt.v())));
        ShardWriter.RunState run = new ShardWriter.RunState(last, opt.step(), cfg.hash(), Map.of("stage", stage.name(),
                "run_id", runId, "spike_history", st.guard.save()));
        BackgroundWrites.submit(runId + " rank " + rank, timeout, store.fs(), dir, rank, world,
                () -> ShardWriter.write(store.fs(), dir, index, rank, world, snap.sources(), run));
        return dir.toString();
    }

    private StepMetrics step(TrainingBackend b, RingAllReduce ring, Prefetcher pf, long s, TrainConfig.Stage stage) {
        long t0 = System.nanoTime();
        long wait0 = pf.waitNanos();
        Sampler.Batch batch = pf.take();
        long waited = pf.waitNanos() - wait0;
        long c0 = System.nanoTime();
        Objective obj = stage.stageTwo() ? Objective.stageTwo() : Objective.stageOne(stage.model().beta());
        b.zeroGradients();
        StepReport rep = null;
        boolean nonFinite = s == cfg.train().injectNonFiniteAtStep() && ring.rank() == ring.worldSize() - 1;
        if (!nonFinite) {
            try {
                rep = b.forward(batch.tokens(), batch.targets(), obj);
                b.backward();
            } catch (io.ouro.worker.model.NonFiniteException e) {
                nonFinite = true;
            }
        }
        float[] g = b.gradients();
        if (nonFinite) {
            java.util.Arrays.fill(g, 0f); // this rank still takes part in the all-reduce, with nothing
        }
        // token-weighted: the global objective is the mean over every target position of the global batch
        float w = nonFinite ? 0 : rep.tokens();
        localTokens = nonFinite ? 0 : rep.tokens();
        for (int i = 0; i < g.length; i++) {
            g[i] *= w;
        }
        int steps = stage.model().steps();
        float[] extra = new float[3 + 2 * steps];
        if (!nonFinite) {
            extra[0] = w;
            extra[1] = (float) (rep.loss() * w);
            double[] ce = rep.stepCe(), ex = rep.meanExit();
            for (int t = 0; t < steps; t++) {
                extra[2 + t] = (float) (ce[t] * w);
                extra[2 + steps + t] = (float) (ex[t] * w);
            }
        }
        extra[2 + 2 * steps] = nonFinite ? 1 : 0;
        long c1 = System.nanoTime();
        if (stage.stageTwo()) {
            // Stage II trains the exit gate only: the frozen LM's gradients are zero and are not all-reduced
            var lay = b.layout();
            for (var t : new io.ouro.worker.model.TensorView[] {lay.gateWeight(), lay.gateBias()}) {
                ring.allReduceSum(g, t.off(), (int) t.size());
            }
        } else {
            ring.allReduceSum(g, 0, g.length);
        }
        ring.allReduceSum(extra, 0, extra.length);
        long c2 = System.nanoTime();
        float total = extra[0];
        int badRanks = Math.round(extra[2 + 2 * steps]);
        double loss = total > 0 ? extra[1] / total : Double.NaN;
        double norm = Double.NaN;
        String skipped, note = null;
        if (badRanks > 0) {
            skipped = "non-finite loss on " + badRanks + " rank(s)";
        } else {
            for (int i = 0; i < g.length; i++) {
                g[i] /= total;
            }
            b.setGradients(g);
            norm = b.clipGradients(cfg.train().clip() > 0 ? cfg.train().clip() : Double.POSITIVE_INFINITY);
            skipped = guard.check(loss, norm);
            note = guard.takeNote();
        }
        double lr = stage.lrAt(s);
        if (skipped == null) {
            var layout = b.layout();
            b.adamw(lr, stage.stageTwo() ? layout::isGate : t -> true);
        } else if (ring.rank() == 0) {
            skippedAcc.add(1);
        }
        long c3 = System.nanoTime();
        double[] stepCe = new double[steps], exit = new double[steps];
        for (int t = 0; t < steps; t++) {
            stepCe[t] = total > 0 ? extra[2 + t] / total : Double.NaN;
            exit[t] = total > 0 ? extra[2 + steps + t] / total : Double.NaN;
        }
        double ms = 1e-6;
        return new StepMetrics(s, loss, stepCe, exit, norm, lr, (long) total,
                (c3 - t0) * ms, ((c1 - c0) + (c3 - c2)) * ms, (c2 - c1) * ms, waited * ms, skipped, note);
    }

    /**
     * The held-out split on the current weights: {@code validation.batches} global batches, forward only,
     * token-weighted CE per loop step and mean exit distribution all-reduced. {ce[], exit[], {tokens}}.
     */
    private double[][] validate(TrainingBackend b, RingAllReduce ring, TrainConfig.Stage st, int rank, int world,
                                int batch) {
        Sampler vs = DataSources.sampler(cfg, st, true);
        int g = world * batch, steps = st.model().steps();
        Objective obj = st.stageTwo() ? Objective.stageTwo() : Objective.stageOne(st.model().beta());
        float[] acc = new float[1 + 2 * steps];
        for (int k = 0; k < cfg.train().validation().batches(); k++) {
            Sampler.Batch bt = vs.batch(k, (long) k * g, g, rank, world);
            StepReport r;
            try {
                r = b.forward(bt.tokens(), bt.targets(), obj);
            } catch (io.ouro.worker.model.NonFiniteException e) {
                continue; // counted as no tokens; a NaN model shows as a missing validation figure
            }
            acc[0] += r.tokens();
            for (int t = 0; t < steps; t++) {
                acc[1 + t] += (float) (r.stepCe()[t] * r.tokens());
                acc[1 + steps + t] += (float) (r.meanExit()[t] * r.tokens());
            }
        }
        ring.allReduceSum(acc, 0, acc.length);
        double[] ce = new double[steps], exit = new double[steps];
        for (int t = 0; t < steps; t++) {
            ce[t] = acc[0] > 0 ? acc[1 + t] / acc[0] : Double.NaN;
            exit[t] = acc[0] > 0 ? acc[1 + steps + t] / acc[0] : Double.NaN;
        }
        return new double[][] {ce, exit, {acc[0]}};
    }

    /** The configured device, or the GPU Spark assigned to this task when GPU scheduling is on. */
    static String deviceFor(String configured, BarrierTaskContext ctx) {
        ResourceInformation gpu = ctx.resources().get("gpu").getOrElse(() -> null);
        if (gpu != null && gpu.addresses().length > 0 && configured.startsWith("gpu")) {
            return "gpu:" + gpu.addresses()[0];
        }
        return configured;
    }

    /** The host this task's executor runs on, as Spark reports it to the barrier stage. */
    static String hostOf(BarrierTaskContext ctx, int rank) {
        String a = ctx.getTaskInfos()[rank].address();
        int colon = a.lastIndexOf(':');
        return colon > 0 ? a.substring(0, colon) : a;
    }

    static String executorId() {
        SparkEnv env = SparkEnv.get();
        return env == null ? "?" : env.executorId();
    }
}
