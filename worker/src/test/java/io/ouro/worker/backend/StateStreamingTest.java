package io.ouro.worker.backend;

import io.ouro.worker.TestData;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.FlatTensors;
import io.ouro.worker.model.TensorSource;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.ParamSegments;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.model.TensorView;
import io.ouro.worker.model.Upcycling;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The model's state moves tensor piece by tensor piece, never as one array of the whole model (what checkpoints,
 * resume and stage moves do, so that a 2.6B model past 2^31 parameters can): on OpenCL with the parameters in two
 * device segments and the optimizer sharded to a range that straddles them (ZeRO-1), the parameters and moments read
 * through sources equal the Java backend's after two steps; a second backend restored from those sources continues
 * bit-identically; moments outside the kept range cannot be read; upcycling through sources equals the array map.
 */
class StateStreamingTest {

    @Test
    void stateStreamsAcrossSegmentsAndShardedRanges() {
        var cfg = ScheduleFixture.CFG;
        ParamLayout layout = new ParamLayout(cfg);
        long total = layout.totalSize();
        StepShape shape = new StepShape(ScheduleFixture.BATCH, ScheduleFixture.SEQ, 2, Recompute.LAYER, 0, 0)
                .withBufferLimit(total * 6 / 10);
        ParamSegments segs = new ParamSegments(layout, total * 6 / 10);
        assertEquals(2, segs.count());
        long from = segs.start(1) - total / 5, to = segs.start(1) + total / 7; // straddles the two segments
        int n = ScheduleFixture.BATCH * ScheduleFixture.SEQ;
        int[] tokens = TestData.tokens(n, cfg.vocab(), 51), targets = TestData.targets(n, cfg.vocab(), 52);
        float[] init = TestData.params(layout, 10);
        try (TrainingBackend java = Backends.open("java", cfg, AdamWConfig.ouro(), shape);
             TrainingBackend cl = Backends.open(TestDevice.spec(), cfg, AdamWConfig.ouro(), shape);
             TrainingBackend cl2 = Backends.open(TestDevice.spec(), cfg, AdamWConfig.ouro(), shape)) {
            for (TrainingBackend b : new TrainingBackend[] {java, cl}) {
                b.shardOptimizer(from, to);
                b.setParameters(FlatTensors.source(init));
                for (int s = 0; s < 2; s++) {
                    step(b, tokens, targets);
                }
            }
            float[] pj = read(java.parameterSource(), layout, 0, total), pc = read(cl.parameterSource(), layout, 0, total);
            assertArrayEquals(pj, java.parameters());
            assertArrayEquals(pc, cl.parameters());
            assertClose(pj, pc, 1e-5, "parameters, Java vs OpenCL");
            for (int which = 0; which < 2; which++) {
                float[] mj = read(java.momentSource(which), layout, from, to), mc = read(cl.momentSource(which), layout, from, to);
                assertClose(mj, mc, which == 0 ? 1e-5 : 1e-8, "moment " + which + ", Java vs OpenCL");
                assertTrue(Arrays.stream(toDoubles(mc)).anyMatch(x -> x != 0), "moment " + which + " moved");
            }
            TensorView outside = layout.embed();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cl.momentSource(0).read(outside, 0, new float[4], 0, 4));
            assertTrue(e.getMessage().contains("outside the range"), e.getMessage());
            assertEquals(2, cl.optimizerStep());

            cl2.shardOptimizer(from, to);
            cl2.setParameters(cl.parameterSource());
            cl2.setOptimizerState(cl.optimizerStep(), cl.momentSource(0), cl.momentSource(1));
            step(cl, tokens, targets);
            step(cl2, tokens, targets);
            assertArrayEquals(cl.parameters(), cl2.parameters(), "a backend restored from the sources continues alike");
            assertArrayEquals(read(cl.momentSource(1), layout, from, to), read(cl2.momentSource(1), layout, from, to));
        }
    }

    @Test
    void upcyclingThroughSourcesEqualsTheArrayMap() {
        var small = ScheduleFixture.CFG;
        var big = small.withLayers(small.layers() * 2);
        ParamLayout a = new ParamLayout(small), b = new ParamLayout(big);
        float[] p = TestData.params(a, 11);
        for (String mode : new String[] {"tile", "interleave"}) {
            float[] mapped = Upcycling.map(a, b, p, mode);
            assertArrayEquals(mapped, read(Upcycling.source(a, b, FlatTensors.source(p), mode), b, 0, b.totalSize()), mode);
            // layer i of the grown model is a copy of its source layer
            int src = mode.equals("tile") ? 1 % small.layers() : 1 / 2;
            TensorView q1 = b.layer(1)[ParamLayout.Q], q0 = a.layer(src)[ParamLayout.Q];
            assertArrayEquals(Arrays.copyOfRange(p, q0.off(), q0.off() + q0.len()),
                    Arrays.copyOfRange(mapped, q1.off(), q1.off() + q1.len()), mode);
        }
    }

    private static void step(TrainingBackend b, int[] tokens, int[] targets) {
        b.zeroGradients();
        b.forwardBackward(tokens, targets, Objective.stageOne(0.1));
        b.clipGradients(1.0);
        b.adamw(1e-2, t -> true);
    }

    /** Elements [from, to) of the flat layout, read tensor piece by tensor piece. */
    static float[] read(TensorSource src, ParamLayout layout, long from, long to) {
        float[] out = new float[(int) (to - from)];
        for (TensorView t : layout.tensors()) {
            long a = Math.max(from, t.offset()), e = Math.min(to, t.offset() + t.size());
            if (a < e) {
                src.read(t, a - t.offset(), out, (int) (a - from), (int) (e - a));
            }
        }
        return out;
    }

    private static void assertClose(float[] a, float[] b, double tol, String what) {
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        System.out.printf("%s: within %.2e%n", what, worst);
        assertTrue(worst <= tol, what + " differ by " + worst);
    }

    private static double[] toDoubles(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }
}
