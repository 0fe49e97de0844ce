package io.ouro.orchestrator.cluster;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CI's two-fault version of {@code tests/bench.sh chaos}: on a standalone cluster of three executor JVMs, the
 * checkpoint of step 10 fails to write and then a rank hangs at step 15; the watchdog cancels the segment, the run
 * goes back to step 0 (the newest checkpoint that was committed), each injected fault fires once, and the final
 * weights are bit-identical to a fault-free run's.
 */
class ChaosClusterTest {

    @Test
    @Timeout(600)
    void aFailedCheckpointWriteThenAHungRankEndBitIdenticalToAFaultFreeRun() throws Exception {
        String appJar = System.getProperty("ouro.app.jar");
        assertTrue(appJar != null && Files.exists(Path.of(appJar)), "the app jar is built: " + appJar);
        Path work = Path.of("target", "chaos-test-" + System.nanoTime()).toAbsolutePath();
        List<ChaosRun.Fault> faults = List.of(new ChaosRun.Fault(ChaosRun.Kind.CHECKPOINT_WRITE_FAILURE, 10),
                new ChaosRun.Fault(ChaosRun.Kind.RANK_HANG, 15));
        ChaosRun.Outcome o = ChaosRun.run(work, appJar, 30, faults, 400);
        o.recoveries().forEach(r -> System.out.println("chaos: " + r));
        System.out.println(o.resultLine());
        assertEquals(2, o.fired().size(), "both faults fired: " + o.fired());
        assertTrue(o.completed(), "the run completed");
        assertTrue(o.identical(), "the final weights are bit-identical to the fault-free run's");
        assertEquals(1, o.recoveries().size(), o.recoveries().toString());
        ChaosRun.Recovery r = o.recoveries().get(0);
        assertTrue(r.cause().contains("watchdog") || r.cause().contains("no step"), r.toString());
        assertEquals(0, r.from(), "the checkpoint of step 10 was not written, so the run went back to step 0");
        assertEquals(new ChaosRun.Fault(ChaosRun.Kind.RANK_HANG, 15), r.fault(), r.toString());
        assertEquals(15, r.lost(), "steps 0-14 ran again: " + r);
    }
}
