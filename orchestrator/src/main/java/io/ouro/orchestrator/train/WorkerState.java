package io.ouro.orchestrator.train;

import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.backend.Backends;
import io.ouro.worker.backend.TrainingBackend;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.ParamInit;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * A worker's model and optimizer, resident in the executor JVM between segments so that a segment
 * does not reload them. Every rank holds bit-identical parameters and optimizer state (they apply the
 * same all-reduced gradients), so a state left at step s by any rank of the run can serve any rank's
 * next segment starting at s; the registry hands each one to one task at a time.
 */
final class WorkerState implements AutoCloseable {

    private static final List<WorkerState> REGISTRY = new ArrayList<>();

    final String runId;
    final String device;
    final TrainingBackend backend;
    long step;
    private boolean inUse;

    private WorkerState(String runId, String device, TrainingBackend backend, long step) {
        this.runId = runId;
        this.device = device;
        this.backend = backend;
        this.step = step;
    }

    /** Why the state was chosen: "resident" (kept from an earlier segment), "initialised", or the checkpoint. */
    record Lease(WorkerState state, String source) {
    }

    /**
     * A state of {@code runId} at {@code step} on {@code device}: a resident one if this executor has one
     * free, else a freshly initialised one when {@code step == 0}. A resident state at another step is
     * stale (the run went back to a checkpoint, or this executor missed segments) and is dropped.
     */
    static Lease acquire(String runId, long step, String device, TrainConfig cfg) {
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
                    s.inUse = true;
                    return new Lease(s, "resident");
                }
            }
        }
        if (step != 0 && cfg.train().checkpointEvery() == 0) {
            throw new IllegalStateException("run " + runId + ": no model state for step " + step
                    + " on this executor, and checkpoints are not configured for this run");
        }
        TrainingBackend b = Backends.open(device, cfg.model(), AdamWConfig.ouro(), cfg.train().batchPerWorker(),
                cfg.train().seqLen());
        String source;
        try {
            if (step == 0) {
                b.setParameters(ParamInit.initialize(b.layout()));
                source = "initialised";
            } else {
                CheckpointStore store = new CheckpointStore(cfg.run().out(), cfg.train().keepCheckpoints(),
                        new org.apache.hadoop.conf.Configuration());
                CheckpointStore.Checkpoint c = store.load(step, b.layout(), cfg.hash());
                b.setParameters(c.params());
                b.setOptimizerState(c.optimizer());
                source = "checkpoint " + c.path();
            }
        } catch (java.io.IOException | RuntimeException e) {
            b.close();
            throw new IllegalStateException("run " + runId + ": cannot load the state of step " + step + ": "
                    + e.getMessage(), e);
        }
        WorkerState s = new WorkerState(runId, device, b, step);
        s.inUse = true;
        synchronized (REGISTRY) {
            REGISTRY.add(s);
        }
        return new Lease(s, source);
    }

    /** Back to the registry at {@code step}; a state whose segment failed half-way is dropped. */
    void release(boolean completed) {
        synchronized (REGISTRY) {
            inUse = false;
            if (!completed) {
                REGISTRY.remove(this);
                close();
            }
        }
    }

    /** Drops every state of {@code runId} on this JVM (end of run). */
    static void dropRun(String runId) {
        synchronized (REGISTRY) {
            for (Iterator<WorkerState> it = REGISTRY.iterator(); it.hasNext(); ) {
                WorkerState s = it.next();
                if (s.runId.equals(runId) && !s.inUse) {
                    it.remove();
                    s.close();
                }
            }
        }
    }

    @Override
    public void close() {
        backend.close();
    }
}
