package io.ouro.worker.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.ouro.worker.model.DecayPolicy;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.ParamLayout;
import io.ouro.worker.torch.TorchLoopLM;

/** The PyTorch side of the step benchmark, apart so that the benchmark runs where DJL is absent. */
final class TorchStep {

    private TorchStep() {
    }

    static double secondsPerStep(ParamLayout layout, int[] tokens, int[] targets, int batch, int seqLen,
                                 Objective obj, int iters) {
        try (TorchLoopLM t = new TorchLoopLM(layout)) {
            t.load(ParamInit.initialize(layout));
            DecayPolicy decay = DecayPolicy.defaults();
            Runnable step = () -> {
                t.forwardBackward(tokens, targets, batch, seqLen, obj, true, false);
                t.clipAndStep(3e-4, 0.1, 0.9, 0.95, 1e-8, 1.0, obj, decay::decays);
            };
            step.run();
            long t0 = System.nanoTime();
            for (int i = 0; i < iters; i++) {
                step.run();
            }
            return (System.nanoTime() - t0) / 1e9 / iters;
        }
    }

    static double sgemmGflops(int size) {
        try (NDManager m = NDManager.newBaseManager("PyTorch")) {
            NDArray a = m.randomNormal(new Shape(size, size)), b = m.randomNormal(new Shape(size, size));
            a.matMul(b).close();
            int reps = 10;
            long t0 = System.nanoTime();
            for (int i = 0; i < reps; i++) {
                a.matMul(b).close();
            }
            return 2.0 * size * size * size * reps / ((System.nanoTime() - t0) / 1e9) / 1e9;
        }
    }
}
