package io.ouro.orchestrator.hf;

import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;

import java.io.IOException;

/**
 * The one place the evaluation and export tools read a training run's checkpoint, through {@link CheckpointStore}'s
 * public load: the weights of step k with the model of the stage that wrote it (the stage that ran step k - 1).
 */
public final class RunCheckpoint {

    /** A checkpoint's weights and the model they belong to. */
    public record Weights(LoopConfig config, float[] params, long step, String path) {
    }

    private RunCheckpoint() {
    }

    /**
     * The checkpoint {@code dir} ({@code <out>/checkpoints/step-NNNNNNNNNN}) of the run {@code cfg} describes, or its
     * newest one under {@code run.out} when {@code dir} is null.
     */
    public static Weights load(TrainConfig cfg, String dir, Configuration conf) throws IOException {
        String out;
        long step;
        if (dir != null) {
            Path p = new Path(dir);
            if (!p.getName().matches("step-\\d{10}") || p.getParent() == null || p.getParent().getParent() == null) {
                throw new IOException(dir + ": expected a checkpoint directory <run.out>/checkpoints/step-NNNNNNNNNN");
            }
            out = p.getParent().getParent().toString();
            step = Long.parseLong(p.getName().substring(5));
        } else {
            out = cfg.run().out();
            step = new CheckpointStore(out, 1, conf).latestValid(Long.MAX_VALUE, cfg.hash(),
                            w -> System.err.println("ouro: " + w))
                    .orElseThrow(() -> new IOException(cfg.file() + ": no valid checkpoint under run.out " + out
                            + "/checkpoints"))
                    .step();
        }
        if (step <= 0) {
            throw new IOException(dir + ": the checkpoint of step 0 holds no trained weights");
        }
        LoopConfig model = cfg.stageAt(step - 1).model();
        CheckpointStore.Checkpoint c = new CheckpointStore(out, 1, conf).load(step, new ParamLayout(model), cfg.hash());
        return new Weights(model, c.params(), c.step(), c.path());
    }
}
