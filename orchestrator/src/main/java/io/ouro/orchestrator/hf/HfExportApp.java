package io.ouro.orchestrator.hf;

import io.ouro.tokenizer.cli.Args;
import io.ouro.orchestrator.fs.HadoopModelDir;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.hf.HfConfig;
import io.ouro.worker.hf.HfModelDir;
import io.ouro.worker.hf.Safetensors;
import org.apache.hadoop.conf.Configuration;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Map;

/**
 * {@code ouro export}: a training run's checkpoint as an HF Ouro model directory (see {@link HfModelDir}) that
 * transformers loads with {@code trust_remote_code=True}: its config.json's auto_map names the published Ouro
 * modeling code by repository ({@code --modeling-repo}); {@code --exit all|q:Q} becomes early_exit_threshold (1.0 or
 * Q), the setting HF's forward exits by.
 */
public final class HfExportApp {

    private HfExportApp() {
    }

    public static void main(String[] args) throws IOException {
        Args a = Args.orExit(args, "ouro export --config FILE [--checkpoint DIR] --out DIR [--dtype bf16|fp32]"
                + " [--tokenizer tokenizer.json] [--max-positions N] [--modeling-repo OWNER/NAME] [--exit all|q:Q]");
        System.out.println(export(a.get("config", null), a.get("checkpoint", null), a.required("out"),
                Safetensors.Dtype.parse(a.get("dtype", "bf16")), a.get("tokenizer", null),
                Integer.parseInt(a.get("max-positions", "4096")),
                a.get("modeling-repo", HfConfig.DEFAULT_MODELING_REPO), exitThreshold(a.get("exit", "all")),
                new Configuration()));
    }

    /**
     * HF's early_exit_threshold for an exit policy: {@code all} (every step, the last step's logits) is 1.0, Q-exit
     * {@code q:Q} is Q (HF picks the first step whose cumulative exit probability reaches it, as Q-exit does); a
     * static {@code step:K} has no HF counterpart.
     */
    static double exitThreshold(String spec) {
        if (spec.equals("all")) {
            return 1.0;
        }
        if (spec.startsWith("q:")) {
            double q = Double.parseDouble(spec.substring(2));
            if (!(q > 0 && q <= 1)) {
                throw new IllegalArgumentException("--exit q:Q: HF's early_exit_threshold takes Q in (0, 1], got " + q);
            }
            return q;
        }
        throw new IllegalArgumentException("--exit: expected all or q:Q (HF's early_exit_threshold), got '" + spec + "'");
    }

    /** Exports with the default modeling repository and exit (all steps) and says what it wrote. */
    public static String export(String config, String checkpoint, String out, Safetensors.Dtype dtype, String tokenizer,
                                int maxPositions, Configuration conf) throws IOException {
        return export(config, checkpoint, out, dtype, tokenizer, maxPositions, HfConfig.DEFAULT_MODELING_REPO, 1.0, conf);
    }

    /** Exports and says what it wrote. */
    public static String export(String config, String checkpoint, String out, Safetensors.Dtype dtype, String tokenizer,
                                int maxPositions, String modelingRepo, double exitThreshold, Configuration conf)
            throws IOException {
        if (modelingRepo == null || !modelingRepo.matches("[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")) {
            throw new IllegalArgumentException("--modeling-repo: expected an HF repository OWNER/NAME, got '"
                    + modelingRepo + "'");
        }
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
        HfModelDir.write(new HadoopModelDir(out, conf), m.config(), m.params(), dtype, maxPositions, modelingRepo,
                exitThreshold, tok, Map.of("format", "pt", "source", m.origin()));
        return "exported " + m.origin() + " (" + m.config() + ") to " + out + " as " + dtype
                + (tok == null ? "" : " with the tokenizer");
    }
}
