package io.ouro.worker.opencl;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The OpenCL backend refuses a collector that moves large arrays, naming it and the fix; no device needed. */
class CollectorCheckTest {

    @Test
    void collectorsThatMoveLargeArraysAreRefusedByName() {
        for (String c : new String[] {"Serial", "Parallel", "Z", "Shenandoah"}) {
            String msg = assertThrows(IllegalStateException.class, () -> HostArrays.requireCollector(c)).getMessage();
            assertTrue(msg.contains("the " + c + " garbage collector (-XX:+Use" + c + "GC)"), msg);
            assertTrue(msg.contains("Run it with -XX:+UseG1GC"), msg);
            assertTrue(msg.contains("spark.executor.extraJavaOptions"), msg);
        }
        String unknown = assertThrows(IllegalStateException.class,
                () -> HostArrays.requireCollector("unknown (no flag)")).getMessage();
        assertTrue(unknown.contains("an unknown garbage collector: unknown (no flag)"), unknown);
    }

    @Test
    void g1AndEpsilonNeverMoveTheArrays() {
        assertDoesNotThrow(() -> HostArrays.requireCollector("G1"));
        assertDoesNotThrow(() -> HostArrays.requireCollector("Epsilon"));
    }

    @Test
    void theBuildsJvmsRunG1() {
        // the poms' argLine (and deploy/bin/ouro, and ouro plan --spark-conf for executors) set -XX:+UseG1GC
        assertEquals("G1", HostArrays.collectorInUse());
        assertDoesNotThrow(() -> HostArrays.requireCollector());
    }
}
