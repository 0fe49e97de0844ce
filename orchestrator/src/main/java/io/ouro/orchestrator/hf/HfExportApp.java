package io.ouro.orchestrator.hf;

import io.ouro.tokenizer.cli.Args;
import io.ouro.orchestrator.fs.HadoopModelDir;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.hf.HfModelDir;
import io.ouro.worker.hf.Safetensors;
import org.apache.hadoop.conf.Configuration;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Map;

/**
 * {@code ouro export --config FILE [--checkpoint DIR] --out DIR [--dtype bf16|fp32] [--tokenizer tokenizer.json]
 * [--max-positions N]}: a training run's checkpoint as an HF Ouro model directory (see {@link HfModelDir}).
 */
public final class HfExportApp {

    private HfExportApp() {
    }

    public static void main(String[] args) throws IOException {
        Args a = Args.orExit(args, "ouro export --config FILE [--checkpoint DIR] --out DIR [--dtype bf16|fp32]"
                + " [--tokenizer tokenizer.json] [--max-positions N]");
        System.out.println(export(a.get("config", null), a.get("checkpoint", null), a.required("out"),
                Safetensors.Dtype.parse(a.get("dtype", "bf16")), a.get("tokenizer", null),
                Integer.parseInt(a.get("max-positions", "4096")), new Configuration()));
    }

    /** Exports and says what it wrote. */
    public static String export(String config, String checkpoint, String out, Safetensors.Dtype dtype, String tokenizer,
                                int maxPositions, Configuration conf) throws IOException {
        if (config == null) {
            throw new IllegalArgumentException("--config FILE (the run's pipeline config) is required");
        }
        ModelSource.Loaded m = ModelSource.load(null, config, checkpoint, conf);
        HfModelDir.Tokenizer tok = null;
        if (tokenizer != null) {
            byte[] json = Files.readAllBytes(Paths.get(tokenizer));
            BpeTokenizer t = BpeTokenizer.fromJson(json, tokenizer);
            if (t.vocabSize() > m.config().vocab()) {
                throw new IllegalArgumentException(tokenizer + ": " + t.vocabSize() + " ids, more than the model's vocab "
                        + m.config().vocab());
            }
            tok = new HfModelDir.Tokenizer(json, t.decode(new int[] {t.eosId()}), t.eosId());
        }
        HfModelDir.write(new HadoopModelDir(out, conf), m.config(), m.params(), dtype, maxPositions, tok,
                Map.of("format", "pt", "source", m.origin()));
        return "exported " + m.origin() + " (" + m.config() + ") to " + out + " as " + dtype
                + (tok == null ? "" : " with the tokenizer");
    }
}
