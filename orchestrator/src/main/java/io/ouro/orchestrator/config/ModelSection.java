package io.ouro.orchestrator.config;

import io.ouro.orchestrator.fs.HadoopModelDir;
import io.ouro.worker.model.LoopConfig;

import java.io.IOException;

/** The {@code model} section: a preset or an HF Ouro directory ({@code init_from}), and the fields that change it. */
final class ModelSection {

    private ModelSection() {
    }

    /**
     * The model of an HF Ouro directory that {@code model.init_from} names (read here, on the driver, so that a wrong
     * directory fails before any executor starts).
     */
    static LoopConfig initFromConfig(Node m, String dir) {
        if (m.has("preset")) {
            throw m.error("preset", "init_from takes the model from " + dir + "/config.json; leave preset out");
        }
        HadoopModelDir d;
        try {
            d = new HadoopModelDir(dir, new org.apache.hadoop.conf.Configuration());
            try (var in = d.open(io.ouro.worker.hf.HfModelDir.CONFIG)) {
                return io.ouro.worker.hf.HfConfig.parse(d.describe(io.ouro.worker.hf.HfModelDir.CONFIG),
                        in.readAllBytes(), new LoopConfig(512, 64, 2, 4, 176, 4, 10_000, 1e-6, 0.1, 0.02, 1));
            }
        } catch (IOException e) {
            throw m.error("init_from", "expected an HF Ouro model directory (" + e.getMessage() + ")");
        }
    }

    /**
     * The model section; with {@code init_from} its base is that directory's model, whose width, heads, FFN and vocab
     * the section may not change (layers may grow by a multiple: the weights are upcycled as a stage transition
     * does; recurrent_steps and rope_base may change freely).
     */
    static LoopConfig model(Node m, LoopConfig initFrom) {
        String preset = initFrom != null ? "init_from" : m.string("preset", "small");
        LoopConfig base;
        switch (preset) {
            case "init_from":
                base = initFrom;
                break;
            case "tiny":
                base = LoopConfig.tiny();
                break;
            case "small":
                base = new LoopConfig(512, 64, 2, 4, 176, 4, 10_000, 1e-6, 0.1, 0.02, 1);
                break;
            case "bench":
                base = LoopConfig.bench();
                break;
            case "ouro-1.4b":
                base = LoopConfig.ouro1_4B();
                break;
            case "ouro-2.6b":
                base = LoopConfig.ouro2_6B();
                break;
            default:
                throw m.error("preset", "expected tiny, small, bench, ouro-1.4b or ouro-2.6b, got '" + preset + "'");
        }
        int vocab = (int) m.integer("vocab", (long) base.vocab(), 2, Integer.MAX_VALUE);
        int hidden = (int) m.integer("hidden", (long) base.hidden(), 2, 1 << 16);
        int layers = (int) m.integer("layers", (long) base.layers(), 1, 1024);
        int heads = (int) m.integer("heads", (long) base.heads(), 1, 1024);
        int ffn = (int) m.integer("ffn", (long) base.ffn(), 1, 1 << 18);
        int steps = (int) m.integer("recurrent_steps", (long) base.steps(), 1, 64);
        double rope = m.number("rope_base", base.ropeBase(), 1, 1e12);
        double beta = m.number("beta", base.beta(), 0, 100);
        double initStd = m.number("init_std", base.initStd(), 1e-9, 10);
        long seed = m.integer("seed", base.seed(), Long.MIN_VALUE, Long.MAX_VALUE);
        m.noOthers();
        if (initFrom != null) {
            String[] names = {"vocab", "hidden", "heads", "ffn"};
            int[] got = {vocab, hidden, heads, ffn}, want = {initFrom.vocab(), initFrom.hidden(), initFrom.heads(), initFrom.ffn()};
            for (int i = 0; i < names.length; i++) {
                if (got[i] != want[i]) {
                    throw m.error(names[i], "init_from's model has " + want[i] + "; only layers (by a multiple),"
                            + " recurrent_steps and rope_base may differ, got " + got[i]);
                }
            }
            if (layers % initFrom.layers() != 0) {
                throw m.error("layers", "a multiple of init_from's " + initFrom.layers() + " layers (upcycling), got " + layers);
            }
        }
        try {
            return new LoopConfig(vocab, hidden, layers, heads, ffn, steps, rope, base.normEps(), beta, initStd, seed);
        } catch (IllegalArgumentException e) {
            String msg = e.getMessage().replaceFirst("^LoopConfig\\.", "");
            throw new ConfigException(m.file() + ": model." + msg.replaceFirst("^steps:", "recurrent_steps:"), e);
        }
    }
}
