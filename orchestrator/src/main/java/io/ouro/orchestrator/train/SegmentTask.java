package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.checkpoint.BackgroundWrites;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.checkpoint.FlatIndex;
import io.ouro.orchestrator.checkpoint.ShardSnapshot;
import io.ouro.orchestrator.checkpoint.ShardWriter;
import io.ouro.orchestrator.checkpoint.StateKind;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.comm.RingGroup;
import io.ouro.worker.comm.ExchangeInterface;
import io.ouro.worker.comm.RingConfig;
import io.ouro.worker.comm.RingOrder;
import io.ouro.worker.data.Prefetcher;
import io.ouro.worker.data.Sampler;
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
 * and for each step reads its slice of the global batch (prefetched) and runs a {@link DataParallelStep};
 * rank 0 sends each step's metrics to the driver as it ends ({@link ProgressPlugin}). When the segment ends
 * with a checkpoint (the driver says so) each rank snapshots its shard and writes it in the background. Every rank ends the segment with the same
 * parameters.
 */
public final class SegmentTask extends AbstractFunction1<Iterator<Integer>, Iterator<SegmentResult>>
        implements Serializable {

    private static final long serialVersionUID = 1L;

    /** Called by every rank as each step ends (rank 0 has sent its metrics); tests hold training there. */
    interface StepHook {
        void stepEnded(int rank, long step);
    }

    /** Null outside tests; a static, so it reaches the tasks of a local-mode executor in the same JVM. */
    static volatile StepHook stepHook;

    private final TrainConfig cfg;
    private final String runId;
    private final String stage;
    private final byte[] secret;
    private final long first, last;
    private final boolean checkpoint;
    private final boolean returnParameters;
    private final LongAccumulator tokensAcc, stepsAcc;
    private final long injectFailureAt;
    private final String attempt;
    private final LongAccumulator skippedAcc;
    private final long peerTimeoutMillis;

    public SegmentTask(TrainConfig cfg, String runId, String stage, byte[] secret, long first, long last,
                       boolean checkpoint, boolean returnParameters, LongAccumulator tokensAcc, LongAccumulator stepsAcc,
                       long injectFailureAt, LongAccumulator skippedAcc, String attempt, long peerTimeoutMillis) {
        this.attempt = attempt;
        this.peerTimeoutMillis = peerTimeoutMillis;
        this.skippedAcc = skippedAcc;
        this.injectFailureAt = injectFailureAt;
        this.cfg = cfg;
        this.runId = runId;
        this.stage = stage;
        this.secret = secret.clone();
        this.first = first;
        this.last = last;
        this.checkpoint = checkpoint;
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
        int world = cfg.train().workers();
        String device = deviceFor(cfg.train().device(), ctx);
        String host = hostOf(ctx, ctx.partitionId());
        // the rank, for the ring and everything else (data slice, optimizer shard, checkpoint shard, rank 0's
        // metrics), is the task's place in the ring ordered by host; see worker/COMM.md "Ring order"
        int[] positions = ringPositions(ctx, device);
        int rank = positions[ctx.partitionId()];
        Stage st0 = cfg.stageAt(first);
        int batch = st0.batchAt(first);
        WorkerState.Lease lease = WorkerState.acquire(runId, first, device, cfg, st0, batch, rank, world);
        WorkerState st = lease.state();
        boolean completed = false;
        try {
            Sampler sampler = DataSources.sampler(cfg, st0);
            int global = world * batch;
            long firstSample = DataSources.firstSample(cfg, st0, first);
            Duration timeout = Duration.ofSeconds(cfg.train().timeoutSeconds());
            // joining the ring waits for every rank's set-up (train.timeout_s); once in, a peer that goes quiet
            // longer than the driver's watchdog bound (plus a margin) is given up (SegmentRunner#peerTimeoutMillis)
            Duration peer = Duration.ofMillis(peerTimeoutMillis);
            // the ring's address: the host Spark reports, or the network train.exchange_interface names
            String ringHost = ExchangeInterface.resolve(cfg.train().exchangeInterface(), host);
            RingConfig rc = new RingConfig(rank, world, ringHost, ringHost, secret, timeout, peer,
                    RingConfig.DEFAULT_CHUNK_BYTES, cfg.train().exchangeDtype());
            List<StepMetrics> metrics = new ArrayList<>();
            long sent, payload;
            Validation validation = null;
            try (RingGroup ring = RingGroup.open(rc, cfg.train().ringConnections(), msg -> RingOrder.byPosition(Arrays.asList(ctx.allGather(msg)), positions));
                 Prefetcher pf = new Prefetcher(step -> sampler.batch(step, firstSample + (step - first) * global,
                         global, rank, world), "rank " + rank, first, last, 2, timeout.toMillis())) {
                DataParallelStep dp = new DataParallelStep(st.backend, ring, st0, cfg.train().clip(), st.guard,
                        cfg.train().injectNonFiniteAtStep(), cfg.train().bucketFloats(), cfg.train().shardOptimizer(),
                        peer.toMillis());
                for (long s = first; s < last; s++) {
                    if (s == injectFailureAt && rank == world - 1) {
                        throw new IllegalStateException("injected failure at step " + s + " (train.inject_failure_at_step)");
                    }
                    InjectedFaults.beforeStep(cfg, s, rank, world);
                    long wait0 = pf.waitNanos();
                    Sampler.Batch b = pf.take();
                    DataParallelStep.Outcome o = dp.step(s, b, pf.waitNanos() - wait0);
                    st.step = s + 1;
                    tokensAcc.add(o.localTokens());
                    if (rank == 0) {
                        stepsAcc.add(1);
                        if (o.metrics().skipped() != null) {
                            skippedAcc.add(1);
                        }
                        metrics.add(o.metrics());
                        // live progress; the driver also gets every step in this task's result
                        ProgressPlugin.send(o.metrics().json(stage, Map.of("attempt", attempt, "device", st.backend.describe())));
                    }
                    StepHook hook = stepHook;
                    if (hook != null) {
                        hook.stepEnded(rank, s);
                    }
                }
                // the last update's all-gather, before the parameters are read and the ring closes
                dp.finish();
                if (cfg.validateAt(last)) {
                    validation = dp.validate(DataSources.sampler(cfg, st0, true), cfg.train().validation().batches(),
                            batch);
                }
                sent = ring.stats().payloadBytesSent() + ring.stats().framingBytesSent();
                payload = ring.stats().payloadBytesSent();
            }
            float[] params = returnParameters && rank == 0 ? st.backend.parameters() : null;
            String written = checkpoint ? writeCheckpoint(st, rank, world, st0, timeout) : null;
            completed = true;
            return CollectionConverters.asScala(List.of(new SegmentResult(rank, executorId(), host,
                    ProcessHandle.current().pid(), st.backend.describe(), lease.source(), sent, payload, metrics,
                    params, written, validation)).iterator());
        } finally {
            st.release(completed);
        }
    }

    /**
     * Snapshots this rank's shard of the state on the host and writes it in the background into the
     * checkpoint's pending directory, which the driver commits once every rank's shard is there.
     */
    private String writeCheckpoint(WorkerState st, int rank, int world, Stage stage, Duration timeout)
            throws java.io.IOException {
        CheckpointStore store = new CheckpointStore(cfg.run().out(), cfg.train().keepCheckpoints(),
                new org.apache.hadoop.conf.Configuration());
        org.apache.hadoop.fs.Path dir = store.pendingDir(last, attempt);
        FlatIndex index = new FlatIndex(st.backend.layout().tensors());
        // this rank's range only, straight from the backend (with ZeRO-1 it is the range whose moments it keeps)
        ShardSnapshot snap = new ShardSnapshot(index, rank, world, Map.of(StateKind.MODEL,
                st.backend.parameterSource(), StateKind.EXP_AVG, st.backend.momentSource(0),
                StateKind.EXP_AVG_SQ, st.backend.momentSource(1)));
        ShardWriter.RunState run = new ShardWriter.RunState(last, st.backend.optimizerStep(), cfg.hash(), Map.of("stage", stage.name(),
                "run_id", runId, "spike_history", st.guard.save()));
        BackgroundWrites.submit(runId + " rank " + rank, timeout, store.fs(), dir, rank, world, () -> {
            if (InjectedFaults.fires(cfg, InjectedFaults.Kind.CHECKPOINT_WRITE_FAILURE, last, rank, world)) {
                throw new java.io.IOException("injected failure writing the checkpoint of step " + last
                        + " (train.inject.checkpoint_write_failure_at_steps)");
            }
            ShardWriter.write(store.fs(), dir, index, rank, world, snap.sources(), run);
        });
        return dir.toString();
    }

    /** The configured device, or the GPU Spark assigned to this task when GPU scheduling is on. */
    static String deviceFor(String configured, BarrierTaskContext ctx) {
        ResourceInformation gpu = ctx.resources().get("gpu").getOrElse(() -> null);
        if (gpu != null && gpu.addresses().length > 0 && configured.startsWith("gpu")) {
            return "gpu:" + gpu.addresses()[0];
        }
        return configured;
    }

    /**
     * Every task's ring position, indexed by partition id: the hosts come from the stage's task infos, the
     * devices from an all-gather (every task makes it, so every task computes the same order).
     */
    static int[] ringPositions(BarrierTaskContext ctx, String device) {
        String[] devices = ctx.allGather(device);
        List<RingOrder.Member> members = new ArrayList<>();
        for (int p = 0; p < devices.length; p++) {
            members.add(new RingOrder.Member(hostOf(ctx, p), devices[p], p));
        }
        return RingOrder.positions(members);
    }

    /** The host the executor of partition {@code partition} runs on, as Spark reports it to the barrier stage. */
    static String hostOf(BarrierTaskContext ctx, int partition) {
        String a = ctx.getTaskInfos()[partition].address();
        int colon = a.lastIndexOf(':');
        return colon > 0 ? a.substring(0, colon) : a;
    }

    static String executorId() {
        SparkEnv env = SparkEnv.get();
        return env == null ? "?" : env.executorId();
    }
}
