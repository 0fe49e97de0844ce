package io.ouro.worker.backend;

import io.ouro.worker.model.StepShape;

import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.opencl.OpenClDevices;

/**
 * Chooses the backend the config's {@code device} names ({@code gpu | cpu | opencl:<index> | java}) and
 * logs the choice. An OpenCL device that is absent, or on which a kernel does not compile, is an error:
 * there is no silent fallback to the Java backend.
 */
public final class Backends {

    private static final System.Logger LOG = System.getLogger(Backends.class.getName());

    private Backends() {
    }

    /** A backend for batches of {@code batch} sequences in one micro-batch, every activation kept. */
    public static TrainingBackend open(String device, LoopConfig cfg, AdamWConfig adam, int batch, int seqLen) {
        return open(device, cfg, adam, StepShape.whole(batch, seqLen));
    }

    /** A backend for batches run as the shape says (micro-batches, recomputation). */
    public static TrainingBackend open(String device, LoopConfig cfg, AdamWConfig adam, StepShape shape) {
        return open(device, cfg, adam, shape, null);
    }

    /**
     * The same keeping Adam's moments for [from, to) of the flat layout only (ZeRO-1: this rank's slice, as
     * {@link TrainingBackend#shardOptimizer}); on a device the moment buffers are allocated at the slice's size.
     * Null: all of them.
     */
    public static TrainingBackend open(String device, LoopConfig cfg, AdamWConfig adam, StepShape shape,
                                       long[] optimizerRange) {
        DeviceSpec spec = DeviceSpec.parse(device);
        TrainingBackend b;
        if (spec.kind() == DeviceSpec.Kind.JAVA) {
            b = new JavaBackend(cfg, adam, shape);
            if (optimizerRange != null) {
                b.shardOptimizer(optimizerRange[0], optimizerRange[1]);
            }
        } else {
            var dev = OpenClDevices.select(spec);
            String advice = OpenClDevices.buildFlagAdvice(dev);
            if (advice != null) {
                LOG.log(System.Logger.Level.WARNING, advice);
            }
            b = new OpenClBackend(cfg, adam, dev, shape, optimizerRange);
        }
        LOG.log(System.Logger.Level.INFO, "device " + spec + ": " + b.describe());
        return b;
    }

    /**
     * The decoding ops ({@link io.ouro.worker.infer.DecodeOps}) of the backend {@code device} names, holding
     * {@code params} (forward only: no gradient or optimizer memory). On an OpenCL device the KV cache is sized once:
     * prompts of at most {@code maxPrompt} tokens followed by {@code maxNew} new ones, in cache mode {@code mode} (a
     * shared mode keeps per-step slots for the prompt only).
     */
    public static io.ouro.worker.infer.DecodeOps decoder(String device, LoopConfig cfg, float[] params,
                                                         io.ouro.worker.infer.KvCache.Mode mode, int maxPrompt,
                                                         int maxNew) {
        DeviceSpec spec = DeviceSpec.parse(device);
        if (spec.kind() == DeviceSpec.Kind.JAVA) {
            return new io.ouro.worker.infer.JavaDecodeOps(cfg, params);
        }
        var dev = OpenClDevices.select(spec);
        String advice = OpenClDevices.buildFlagAdvice(dev);
        if (advice != null) {
            LOG.log(System.Logger.Level.WARNING, advice);
        }
        int total = Math.addExact(maxPrompt, maxNew);
        boolean full = mode == io.ouro.worker.infer.KvCache.Mode.FULL;
        return new io.ouro.worker.opencl.OpenClDecodeOps(cfg, dev, params, full ? total : maxPrompt, full ? 0 : total);
    }
}
