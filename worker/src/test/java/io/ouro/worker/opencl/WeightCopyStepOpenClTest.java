package io.ouro.worker.opencl;

import io.ouro.worker.TestData;
import io.ouro.worker.TestDevice;
import io.ouro.worker.model.DecayPolicy;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.model.Recompute;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.opencl.OpenClOps.GemmKernel;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bfloat16 copies the tensor-core GEMM reads, kept in step through training: three steps of forward, backward and
 * AdamW with every product on the tensor-core GEMM (its emulation on pocl), the weights read from their copy and the
 * activation operands from their copies (made at the first product that reads a range, dropped by any write over it),
 * against the same three steps with the GEMM fetching every operand as fp32 and rounding it as it stages it. Both put
 * the same bfloat16 values into the same tiles, so the losses and the weights after each step must be the same bits;
 * a copy not made again after the optimizer step or after an op rewrote an activation (or made from the wrong
 * segment, range or offset) feeds a product old or wrong values and moves them. The parameters span several segments
 * (a buffer limit of 700 floats), so the weights' copy is per segment.
 */
class WeightCopyStepOpenClTest {

    /**
     * Three shapes: layer recomputation in chunks of 7 rows over two parameter segments; loop-step recomputation with
     * the stash in bf16; every activation kept (no recomputation, the products over whole micro-batches).
     */
    static java.util.stream.Stream<StepShape> shapes() {
        return java.util.stream.Stream.of(new StepShape(4, 40, 2, Recompute.LAYER, 7, 700),
                new StepShape(4, 40, 2, Recompute.LOOP_STEP, 0, 0).withBf16Stash(true),
                new StepShape(2, 33, 2, Recompute.NONE, 0, 0));
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("shapes")
    void trainingStepsReadingTheCopyAreBitIdenticalToRoundingOnStaging(StepShape fp32Shape) {
        var device = OpenClDevices.select(DeviceSpec.parse(TestDevice.spec()));
        // on a GPU that runs the instruction, after an fp32 program in this process: deploy/gpu-check.sh runs this
        // test again in a bf16_tensor process of its own
        org.junit.jupiter.api.Assumptions.assumeTrue(ClKernels.serves(MatmulPrecision.BF16_TENSOR, device),
                "this process's program is fp32 and the device runs the tensor-core instruction");
        LoopConfig cfg = LoopConfig.tiny();
        StepShape shape = fp32Shape.withMatmul(MatmulPrecision.BF16_TENSOR);
        int n = shape.batch() * shape.seqLen(), steps = 3;
        float[] params = TestData.params(new ParamLayout(cfg), 11);
        int[] tokens = TestData.tokens(n, cfg.vocab(), 41), targets = TestData.targets(n, cfg.vocab(), 42);
        Objective obj = Objective.stageOne(0.1);
        float[][] losses = new float[2][steps];
        float[][] weights = new float[2][];
        long copies = 0, actCopies = 0, tcProducts = 0;
        int segments = 0;
        for (int run = 0; run < 2; run++) {
            boolean copy = run == 0;
            try (OpenClModel cl = new OpenClModel(cfg, device, shape, false)) {
                cl.ops().useGemm(GemmKernel.TENSOR);
                cl.ops().useWeightCopy(copy);
                cl.ops().useActivationCopy(copy);
                assertTrue(cl.ops().weightCopy(), "bf16_tensor keeps the copy");
                segments = cl.ops().segments();
                cl.setParameters(params);
                cl.ops().startProfile();
                for (int s = 0; s < steps; s++) {
                    cl.zeroGradients();
                    StepReport r = cl.forwardBackward(tokens, targets, obj);
                    losses[run][s] = (float) r.loss();
                    cl.adamw(3e-2, 0.9, 0.95, 1e-8, 0.1, DecayPolicy.defaults(), t -> true);
                }
                weights[run] = cl.parameters();
                Map<String, long[]> profile = cl.ops().profile();
                String tc = cl.ops().tensorCores() ? OpenClOps.TC_NAME : OpenClOps.TC_EMULATED_NAME;
                assertTrue(profile.get(tc)[1] > 0, "the products ran on the tensor-core kernel");
                long made = KernelAsserts.launches(cl.ops(), DeviceOp.CL_WEIGHT_BF16);
                long actMade = KernelAsserts.launches(cl.ops(), DeviceOp.CL_ACT_BF16);
                if (copy) {
                    copies = made;
                    actCopies = actMade;
                    tcProducts = profile.get(tc)[1];
                } else {
                    assertEquals(0L, made, "without the copies none is made");
                    assertEquals(0L, actMade, "without the copies none is made");
                }
                assertTrue(cl.ops().isRunningOpenCl(), "must run as OpenCL");
            }
        }
        System.out.printf("bf16 copies: %d segments, %d weight copies made in %d steps; %d activation copies for %d "
                + "tensor-core products; losses %s%n", segments, copies, steps, actCopies, tcProducts,
                java.util.Arrays.toString(losses[0]));
        // fewer activation copies than products (the ones reused: q, k, v read one input, so do gate and up, and each
        // weight gradient reads the input gradient's dY and the forward's x), and some
        assertTrue(actCopies > 0 && actCopies < tcProducts, actCopies + " activation copies, " + tcProducts + " products");
        assertTrue(segments > 1 || shape.bufferLimit() == 0, "the parameters span several segments");
        // each step's forward reads every segment holding a weight matrix from a copy made after the last update
        assertTrue(copies >= steps && copies <= (long) steps * segments, copies + " copies");
        for (int s = 0; s < steps; s++) {
            assertEquals(Float.floatToRawIntBits(losses[1][s]), Float.floatToRawIntBits(losses[0][s]),
                    "loss of step " + s + ": copy " + losses[0][s] + ", rounding on staging " + losses[1][s]);
        }
        assertTrue(losses[0][steps - 1] != losses[0][0], "the steps changed the weights");
        assertEquals(weights[1].length, weights[0].length);
        for (int i = 0; i < weights[0].length; i++) {
            assertEquals(Float.floatToRawIntBits(weights[1][i]), Float.floatToRawIntBits(weights[0][i]),
                    "weight " + i + " after " + steps + " steps");
        }
    }
}
