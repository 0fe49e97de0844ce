package io.ouro.orchestrator.hf;

import io.ouro.orchestrator.fs.HadoopModelDir;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.hf.HfModelDir;
import io.ouro.worker.model.LoopConfig;
import org.apache.hadoop.conf.Configuration;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Paths;

/**
 * Where the tools ({@code ouro generate}, {@code ouro eval}, {@code ouro export}) take a model from: an HF model
 * directory ({@code --model DIR}), or a training run's checkpoint ({@code --config FILE [--checkpoint DIR]}, the
 * newest when no directory is named); and the tokenizer that goes with it.
 */
public final class ModelSource {

    /** A model ready to run: its shape, its weights and where they came from. */
    public record Loaded(LoopConfig config, float[] params, String origin) {
    }

    private ModelSource() {
    }

    /** HF-only fields (beta, init_std, seed) of a model read from an HF directory, which inference does not use. */
    static final LoopConfig HF_DEFAULTS = LoopConfig.ouro1_4B();

    public static Loaded load(String model, String config, String checkpoint, Configuration conf) throws IOException {
        if ((model == null) == (config == null)) {
            throw new IllegalArgumentException("name the model with exactly one of --model DIR (an HF Ouro directory)"
                    + " or --config FILE [--checkpoint DIR] (a training run's checkpoint)");
        }
        if (model != null) {
            HfModelDir.Model m = HfModelDir.read(new HadoopModelDir(model, conf), HF_DEFAULTS);
            return new Loaded(m.config(), m.params(), model);
        }
        TrainConfig cfg = TrainConfig.load(config, conf);
        RunCheckpoint.Weights w = RunCheckpoint.load(cfg, checkpoint, conf);
        return new Loaded(w.config(), w.params(), w.path());
    }

    /** The tokenizer named, else the model directory's tokenizer.json. */
    public static BpeTokenizer tokenizer(String file, String modelDir, Configuration conf) throws IOException {
        if (file != null) {
            return BpeTokenizer.load(Paths.get(file));
        }
        if (modelDir == null) {
            throw new IllegalArgumentException("--tokenizer FILE is required with --config (a run's checkpoint holds no"
                    + " tokenizer; an HF directory given with --model may)");
        }
        HadoopModelDir dir = new HadoopModelDir(modelDir, conf);
        if (!dir.exists(HfModelDir.TOKENIZER)) {
            throw new IllegalArgumentException(dir.describe(HfModelDir.TOKENIZER) + " does not exist; pass --tokenizer FILE");
        }
        try (InputStream in = dir.open(HfModelDir.TOKENIZER)) {
            return BpeTokenizer.fromJson(in.readAllBytes(), dir.describe(HfModelDir.TOKENIZER));
        }
    }
}
