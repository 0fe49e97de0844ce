package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.checkpoint.FlatIndex;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.checkpoint.StateKind;
import io.ouro.worker.model.FlatTensors;
import io.ouro.worker.model.HostState;
import io.ouro.worker.model.TensorSource;
import io.ouro.orchestrator.fs.HadoopModelDir;
import io.ouro.worker.hf.HfModelDir;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.backend.Backends;
import io.ouro.worker.backend.TrainingBackend;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.Upcycling;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;

/**
 * A worker's model and optimizer, resident in the executor JVM between segments so that a segment
 * does not reload them. Every rank holds bit-identical parameters and optimizer state (they apply the
 * same all-reduced gradients), so a state left at step s by any rank of the run can serve any rank's
 * next segment starting at s; the registry hands each one to one task at a time.
 *
 * <p>A backend is built for one shape (stage model, batch, sequence length). When the next segment needs
 * another shape (a new stage, a batch-ramp step) the state moves into a new backend: parameters and
 * optimizer state carry over, through {@link Upcycling} when the layer count grows.
 */
final class WorkerState implements AutoCloseable {

    private static final List<WorkerState> REGISTRY = new ArrayList<>();

    final String runId;
    final String device;
    final String shape;
    final TrainingBackend backend;
    final SpikeGuard guard;
    /** ZeRO-1: the range of the flat layout whose moments the backend keeps; null when it keeps all. */
    final long[] range;
    long step;
    private boolean inUse;

    private WorkerState(String runId, String device, String shape, TrainingBackend backend, long step, SpikeGuard guard,
                        long[] range) {
        this.guard = guard;
        this.range = range;
        this.runId = runId;
        this.device = device;
        this.shape = shape;
        this.backend = backend;
        this.step = step;
    }

    /** Why the state was chosen: "resident", "initialised", "moved to a new shape", or the checkpoint. */
    record Lease(WorkerState state, String source) {
    }

    static String shape(Stage st, StepShape s) {
        return st.name() + "/" + st.model() + "/" + s;
    }

    static Lease acquire(String runId, long step, String device, TrainConfig cfg, Stage st, int batch,
                         int rank, int world) {
        StepShape stepShape = Plan.memory(st, batch, cfg.train()).shape();
        boolean shard = cfg.train().shardOptimizer() && world > 1;
        String shape = shape(st, stepShape) + (shard ? "/zero-1 rank " + rank + " of " + world : "");
        WorkerState moveFrom = null;
        synchronized (REGISTRY) {
            for (Iterator<WorkerState> it = REGISTRY.iterator(); it.hasNext(); ) {
                WorkerState s = it.next();
                if (s.inUse) {
                    continue;
                }
                if (!s.runId.equals(runId) || s.step > step) {
                    it.remove();
                    s.close();
                    continue;
                }
                if (s.step == step && s.device.equals(device)) {
                    if (s.shape.equals(shape)) {
                        s.inUse = true;
                        return new Lease(s, "resident");
                    }
                    if (moveFrom == null) {
                        moveFrom = s;
                        s.inUse = true;
                    }
                }
            }
        }
        long total = new ParamLayout(st.model()).totalSize();
        long[] range = shard ? new long[] {FlatIndex.bound(total, rank, world), FlatIndex.bound(total, rank + 1, world)}
                : null;
        if (moveFrom != null && range != null && !(Arrays.equals(moveFrom.range, range)
                && moveFrom.backend.layout().totalSize() == total)) {
            // the resident state holds another slice of the moments: this rank's comes from the checkpoint
            synchronized (REGISTRY) {
                REGISTRY.remove(moveFrom);
            }
            moveFrom.close();
            moveFrom = null;
        }
        // a move streams the state out to the host and closes the old backend before the new one allocates, so the
        // device never holds two models (the plan's transition peak is the larger stage, not their sum)
        HostState carried = null;
        String movedFrom = null;
        String guardState = null;
        ParamLayout movedLayout = null;
        if (moveFrom != null) {
            try {
                TrainingBackend old = moveFrom.backend;
                movedLayout = old.layout();
                long[] kept = moveFrom.range != null ? moveFrom.range : new long[] {0, old.layout().totalSize()};
                carried = new HostState(old.layout(), old.parameterSource(), old.optimizerStep(), old.momentSource(0),
                        old.momentSource(1), kept[0], kept[1]);
                guardState = moveFrom.guard.save();
                movedFrom = moveFrom.shape;
            } finally {
                synchronized (REGISTRY) {
                    REGISTRY.remove(moveFrom);
                }
                moveFrom.close();
                moveFrom = null;
            }
        }
        TrainingBackend b = Backends.open(device, st.model(), AdamWConfig.ouro(), stepShape, range);
        long planned = Plan.memory(st, batch, cfg.train()).deviceBytes(), has = b.deviceMemoryBytes();
        if (has > 0 && planned > has) {
            b.close();
            throw new IllegalStateException("stage " + st.name() + " is planned for " + planned + " bytes per worker "
                    + "(train.device_memory_gib " + cfg.train().deviceMemoryGib() + "), more than this executor's "
                    + b.describe() + " has (" + has + "); set device_memory_gib to the device's size, or micro_batch "
                    + "and recompute (ouro plan prints what they need)");
        }
        var sp = cfg.train().spike();
        SpikeGuard guard = new SpikeGuard(sp.window(), sp.minHistory(), sp.sigma(), sp.maxConsecutive(), st.name());
        String source;
        try {
            if (carried != null) {
                carry(movedLayout, carried.parameters(), carried.optimizerStep(), carried.moment(0), carried.moment(1),
                        b, st);
                guard.restore(guardState);
                source = "moved from " + movedFrom;
            } else if (step == 0 && !cfg.initFrom().isEmpty()) {
                HfModelDir.Model m = HfModelDir.read(new HadoopModelDir(cfg.initFrom(), new org.apache.hadoop.conf.Configuration()),
                        st.model());
                TensorSource zeros = (t, start, dst, off, len) -> Arrays.fill(dst, off, off + len, 0f);
                carry(new ParamLayout(m.config()), FlatTensors.source(m.params()), 0, zeros, zeros, b, st);
                source = "initialised from " + cfg.initFrom();
            } else if (step == 0) {
                b.setParameters(ParamInit.initialize(b.layout()));
                source = "initialised";
            } else if (cfg.train().checkpointEvery() > 0) {
                CheckpointStore store = new CheckpointStore(cfg.run().out(), cfg.train().keepCheckpoints(),
                        new org.apache.hadoop.conf.Configuration());
                // the checkpoint of step k was written by the stage that ran step k-1
                ParamLayout written = new ParamLayout(cfg.stageAt(step - 1).model());
                // streamed tensor piece by tensor piece into the device: no host array of the whole model
                source = store.read(step, written, cfg.hash(), r -> {
                    carry(written, r.source(StateKind.MODEL), r.optimizerStep(), r.source(StateKind.EXP_AVG),
                            r.source(StateKind.EXP_AVG_SQ), b, st);
                    guard.restore(r.extra().get("spike_history"));
                    return "checkpoint " + r.path();
                });
            } else {
                throw new IllegalStateException("no model state for step " + step
                        + " on this executor, and checkpoints are not configured for this run");
            }
        } catch (java.io.IOException | RuntimeException e) {
            b.close();
            if (moveFrom != null) {
                moveFrom.close();
            }
            throw new IllegalStateException("run " + runId + ": cannot set up the state of step " + step + ": "
                    + e.getMessage(), e);
        }
        guard.enterStage(st.name());
        WorkerState s = new WorkerState(runId, device, shape, b, step, guard, range);
        s.inUse = true;
        synchronized (REGISTRY) {
            REGISTRY.add(s);
        }
        return new Lease(s, source);
    }

    /** Parameters and optimizer state into {@code b}, upcycled when the stage has more layers. */
    private static void carry(ParamLayout from, TensorSource params, long optimizerStep, TensorSource m, TensorSource v,
                              TrainingBackend b, Stage st) {
        ParamLayout to = b.layout();
        if (from.config().layers() != to.config().layers()) {
            String mode = st.upcycle() == null ? "tile" : st.upcycle().mode();
            params = Upcycling.source(from, to, params, mode);
            m = Upcycling.source(from, to, m, mode);
            v = Upcycling.source(from, to, v, mode);
        }
        b.setParameters(params);
        b.setOptimizerState(optimizerStep, m, v);
    }

    /** Back to the registry; a state whose segment failed half-way is dropped. */
    void release(boolean completed) {
        synchronized (REGISTRY) {
            inUse = false;
            if (!completed) {
                REGISTRY.remove(this);
                close();
            }
        }
    }

    @Override
    public void close() {
        backend.close();
    }
}
