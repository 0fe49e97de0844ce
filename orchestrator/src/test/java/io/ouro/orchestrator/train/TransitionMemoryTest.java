package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.Stage;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.backend.MemoryPlan;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.opencl.OpenClDevices;
import io.ouro.worker.opencl.OpenClModel;
import io.ouro.worker.opencl.OpenClOps;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every kind of backend move of pipeline-configs/transitions.yaml (the batch ramp, the stage change with new sequence
 * length, loop steps and upcycling, the move to Stage II), on the OpenCL backend, replicated and ZeRO-1 sharded: the
 * device's allocated bytes, counted as buffers are allocated and closed ({@link OpenClOps#peakDeviceBytes}), never
 * exceed the larger of the two stages' planned bytes: the old backend is closed before the new one allocates. And
 * ZeRO-1's moments are allocated at the slice's size: a sharded worker's backend never holds more than its plan.
 */
class TransitionMemoryTest {

    @ParameterizedTest(name = "workers {0}, shard_optimizer {1}")
    @ValueSource(strings = {"1 false", "2 true"})
    void aMoveNeverHoldsTwoModelsOnTheDevice(String setting) throws Exception {
        int world = Integer.parseInt(setting.split(" ")[0]);
        boolean shard = Boolean.parseBoolean(setting.split(" ")[1]);
        String device = System.getProperty("ouro.test.device", "opencl:0");
        String yaml = Files.readString(Path.of("../pipeline-configs/transitions.yaml"))
                .replace("device: java", "device: " + device + "\n  shard_optimizer: " + shard);
        TrainConfig cfg = TrainConfig.parseWithWorkers("transitions.yaml", yaml, world);
        // every step where the backend's shape changes: the ramp's batch steps and the stages' first steps
        List<Long> moves = new ArrayList<>();
        long end = cfg.stages().get(cfg.stages().size() - 1).endStep();
        for (long s = 1; s < end; s++) {
            if (cfg.stageAt(s) != cfg.stageAt(s - 1) || cfg.stageAt(s).batchAt(s) != cfg.stageAt(s - 1).batchAt(s - 1)) {
                moves.add(s);
            }
        }
        assertTrue(moves.size() >= 3, "the config has a ramp step and two stage changes: " + moves);
        String run = "transition-memory-" + world;
        boolean cpu = OpenClDevices.select(DeviceSpec.parse(device)).getType() == com.aparapi.device.Device.TYPE.CPU;
        WorkerState.Lease lease = WorkerState.acquire(run, 0, device, cfg, cfg.stageAt(0), cfg.stageAt(0).batchAt(0),
                world - 1, world);
        // what else this JVM holds on the device: the first acquire closed other runs' resident states (earlier tests')
        long before = OpenClOps.liveDeviceBytes()
                - ((io.ouro.worker.backend.OpenClBackend) lease.state().backend).model().ops().deviceBytes();
        try {
            assertEquals("initialised", lease.source());
            int moved = 0;
            for (long s : moves) {
                Stage from = cfg.stageAt(s - 1), to = cfg.stageAt(s);
                if (shard && new ParamLayout(from.model()).totalSize() != new ParamLayout(to.model()).totalSize()) {
                    // ZeRO-1 over a model that grows (upcycling): this rank's slice of the new moments is another
                    // range, which comes from the checkpoint (not a move; CheckpointTest, ReshardResumeTest)
                    break;
                }
                moved++;
                long plannedFrom = planned(cfg, from, from.batchAt(s - 1), cpu), plannedTo = planned(cfg, to, to.batchAt(s), cpu);
                long heldFrom = OpenClOps.liveDeviceBytes() - before;
                // within its plan (the exchange buffer grows to a bucket only once the step uses it); with the moments
                // of the model, its plan exactly
                assertTrue(heldFrom <= plannedFrom, "step " + s + ": the resident backend holds " + heldFrom
                        + " bytes, more than its plan " + plannedFrom + " (moments " + (shard ? "of the slice" : "of the model") + ")");
                if (world == 1) {
                    assertEquals(plannedFrom, heldFrom, "step " + s + ": the resident backend holds its plan");
                }
                lease.state().step = s;
                lease.state().release(true);
                OpenClOps.resetPeak();
                lease = WorkerState.acquire(run, s, device, cfg, to, to.batchAt(s), world - 1, world);
                long peak = OpenClOps.peakDeviceBytes() - before;
                System.out.printf("step %d (%s -> %s): planned %d -> %d bytes, peak %d, %s%n", s, from.name(),
                        to.name(), plannedFrom, plannedTo, peak, lease.source());
                assertTrue(lease.source().startsWith("moved from "), "step " + s + " moved the resident state: "
                        + lease.source());
                long heldTo = OpenClOps.liveDeviceBytes() - before;
                assertTrue(peak <= Math.max(plannedFrom, plannedTo), "step " + s + ": the device held " + peak
                        + " bytes at once, more than the larger plan (" + Math.max(plannedFrom, plannedTo) + ")");
                assertEquals(Math.max(heldFrom, heldTo), peak, "step " + s + ": the peak is one backend's buffers, "
                        + "never two at once (" + heldFrom + " then " + heldTo + ")");
                assertTrue(heldTo <= plannedTo, "step " + s + ": the new backend holds " + heldTo + ", plan " + plannedTo);
            }
            assertTrue(moved >= 1, "at least the ramp's move ran");
        } finally {
            lease.state().release(false);
        }
        assertEquals(before, OpenClOps.liveDeviceBytes(), "every buffer released");
    }

    // the plan of the shape Plan.memory chooses, for this device type (a CPU device adds the GEMM's scratch)
    private static long planned(TrainConfig cfg, Stage st, int batch, boolean cpu) {
        MemoryPlan chosen = Plan.memory(st, batch, cfg.train());
        int shards = cfg.train().shardOptimizer() ? cfg.train().workers() : 1;
        long exchange = cfg.train().workers() > 1 ? cfg.train().bucketFloats() : 0;
        return MemoryPlan.of(st.model(), chosen.shape(), cpu, OpenClModel.MAX_BUFFER_FLOATS, shards, exchange)
                .deviceBytes();
    }
}
