package io.ouro.orchestrator.demo;

import io.ouro.orchestrator.config.Stage;
import io.ouro.tokenizer.cli.Args;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;
import io.ouro.orchestrator.PretrainApp;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.train.StepMetrics;
import io.ouro.orchestrator.train.Trainer;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.tokenizer.BpeTrainer;
import io.ouro.tokenizer.job.TokenizeJob;
import io.ouro.worker.opencl.OpenClDevices;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * {@code ouro demo}: the whole product on one machine, Spark in local mode and the local filesystem as
 * storage. It generates a Mano corpus ({@link SynthApp}) unless {@code --corpus} names one, trains a
 * byte-level BPE on it with the tokenizer-training job, tokenizes it into Arrow shards with the
 * tokenization job, trains a small LoopLM with two data-parallel workers through the two stages of
 * {@code pipeline-configs/mano-demo.yaml} (checkpoints under the output directory), evaluates answer
 * accuracy per loop step on held-out expressions, and writes a report (text and HTML with charts).
 */
public final class DemoApp {

    /** The demo's settings. */
    public record Options(String out, String corpus, String config, String device, double scale, long documents,
                          int heldout, int minOps, int maxOps, String master, int lingerSeconds, int evalExpressions,
                          int modulus, Mano.Form form) {
    }

    /** The demo's field unless --modulus says another: small enough to learn in minutes (see docs/demo.md). */
    static final int DEFAULT_MODULUS = 7;

    /**
     * The demo's expressions unless --form says another: chains, computed left to right, where each operator is one
     * more step of the same computation, so the loop's later steps have something to add (see docs/demo.md).
     */
    static final String DEFAULT_FORM = "chain";

    /** Documents of the curriculum's single-operation corpus (the whole table many times over). */
    static final long SINGLE_DOCUMENTS = 20_000;

    private DemoApp() {
    }

    public static void main(String[] args) throws Exception {
        Args a = Args.orExit(args, USAGE);
        Options o;
        try {
            o = new Options(a.get("out", "/tmp/ouro-demo"), a.get("corpus", null),
                    a.get("config", "pipeline-configs/mano-demo.yaml"), a.get("device", "auto"), a.number("scale", 1),
                    a.longValue("documents", 60000), a.integer("heldout", 300), a.integer("min-ops", 1),
                    a.integer("max-ops", 2), a.get("master", "local[2]"), a.integer("linger-ui-s", 0),
                    a.integer("eval", 1000), a.integer("modulus", DEFAULT_MODULUS),
                    Mano.Form.parse(a.get("form", DEFAULT_FORM)));
            Mano.checkModulus(o.modulus());
            if (!(o.scale() > 0)) {
                throw new IllegalArgumentException("--scale: expected a positive number, got " + o.scale());
            }
        } catch (IllegalArgumentException e) {
            System.err.println("demo: " + e.getMessage());
            System.exit(2);
            return;
        }
        run(o, DemoApp::log);
    }

    static final String USAGE = "ouro demo [--out DIR|URI] [--corpus URI] [--device auto|java|cpu|gpu|opencl:<i>]"
            + " [--scale F] [--documents N] [--heldout N] [--min-ops A] [--max-ops B] [--modulus P] [--form chain|prefix]"
            + " [--eval N] [--config FILE] [--master URL] [--linger-ui-s N]";

    /** Runs the demo and returns its report's facts. */
    public static DemoReport.Facts run(Options o, Consumer<String> log) throws Exception {
        long t0 = System.nanoTime();
        String out = uri(o.out());
        Configuration hconf = new Configuration();
        Path outPath = new Path(out);
        FileSystem fs = outPath.getFileSystem(hconf);
        fs.mkdirs(outPath);

        String device = chooseDevice(o.device(), log);

        // 1. the corpus
        String trainText;
        List<Mano.Expr> heldout = new ArrayList<>();
        long documents;
        String corpusName;
        if (o.corpus() == null) {
            SynthApp.Options so = new SynthApp.Options(out + "/corpus", o.documents(), o.heldout(), 1, o.minOps(),
                    o.maxOps(), 2, o.modulus(), o.form());
            long s0 = System.nanoTime();
            SynthApp.Corpus c = SynthApp.write(so, hconf);
            log.accept(String.format(Locale.ROOT, "[1/5] corpus: %d Mano expressions (%s, %d..%d operators over F_%d, %.1f MB)"
                            + " in %s, %d held-out expressions in %s (those of 2+ operators are not in the training files); %.1f s",
                    c.documents(), o.form() == Mano.Form.CHAIN ? "chains" : "prefix trees", o.minOps(), o.maxOps(),
                    o.modulus(), c.bytes() / 1e6, c.train(), c.heldoutDocuments(),
                    c.heldout(), (System.nanoTime() - s0) / 1e9));
            trainText = c.train();
            heldout = readHeldout(fs, new Path(c.heldout()), o.evalExpressions());
            documents = c.documents();
            corpusName = "Mano (generated, seed 1)";
        } else {
            trainText = o.corpus();
            documents = -1;
            corpusName = o.corpus();
            log.accept("[1/5] corpus: " + o.corpus() + " (your text; one document per line; packed windows with the"
                    + " loss on every token, both stages on it)");
        }

        ObjectNode tree = (ObjectNode) new ObjectMapper(new YAMLFactory()).readTree(
                Files.readString(java.nio.file.Path.of(o.config()), StandardCharsets.UTF_8));
        int vocab = tree.path("model").path("vocab").asInt(0);
        if (vocab < 258) {
            throw new IllegalArgumentException(o.config() + ": model.vocab must be set, at least 258 (256 bytes,"
                    + " EOS and one merge), for the demo's tokenizer; got " + vocab);
        }
        String manifest = out + "/data/manifest.json";
        tree.with("run").put("out", out);
        // data: one source, the corpus; or the sources the config names, each filled in by its name: "main" is the
        // corpus, "single" a generated corpus of single operations (the curriculum's first stage)
        String singleText = null;
        if (tree.path("data").has("sources")) {
            for (JsonNode src : (ArrayNode) tree.path("data").get("sources")) {
                String name = src.path("name").asText("");
                if (name.equals("main")) {
                    ((ObjectNode) src).put("manifest", manifest);
                } else if (name.equals("single") && o.corpus() != null) {
                    ((ObjectNode) src).put("manifest", manifest); // your corpus serves both stages
                } else if (name.equals("single")) {
                    SynthApp.Options ss = new SynthApp.Options(out + "/corpus-single", SINGLE_DOCUMENTS, 0, 2, 1, 1, 1,
                            o.modulus(), o.form());
                    singleText = SynthApp.write(ss, hconf).train();
                    ((ObjectNode) src).put("manifest", out + "/data-single/manifest.json");
                } else {
                    throw new IllegalArgumentException(o.config() + ": data.sources: the demo fills in the sources"
                            + " named main (the corpus) and single (generated single operations; your corpus with"
                            + " --corpus); got '" + name + "'");
                }
            }
        } else {
            ObjectNode data = tree.putObject("data");
            data.put("manifest", manifest);
        }
        tree.with("train").put("device", device);
        for (JsonNode st : (ArrayNode) tree.get("stages")) {
            ObjectNode s = (ObjectNode) st;
            if (o.corpus() != null) { // one answer per document is Mano's shape, not a text corpus's: packed windows
                s.remove("sampling");
                s.remove("loss");
            }
            if (s.has("steps")) {
                s.put("steps", Math.max(2, Math.round(s.get("steps").asLong() * o.scale())));
            }
            if (s.path("lr").has("warmup_steps")) {
                ObjectNode lr = (ObjectNode) s.get("lr");
                lr.put("warmup_steps", Math.round(lr.get("warmup_steps").asLong() * Math.min(1, o.scale())));
            }
        }
        ObjectNode train = tree.with("train");
        for (String k : new String[] {"segment_steps", "checkpoint_every"}) {
            if (train.has(k)) {
                train.put(k, Math.max(1, Math.round(train.get(k).asLong() * o.scale())));
            }
        }
        if (train.has("validation")) {
            ObjectNode v = (ObjectNode) train.get("validation");
            v.put("every_steps", Math.max(1, Math.round(v.path("every_steps").asLong() * o.scale())));
        }
        String yaml = new ObjectMapper(new YAMLFactory()).writeValueAsString(tree);
        TrainConfig cfg = TrainConfig.parse(out + "/config.yaml", yaml);
        try (var os = fs.create(new Path(out + "/config.yaml"), true)) {
            os.write(yaml.getBytes(StandardCharsets.UTF_8));
        }

        SparkConf conf = PretrainApp.sparkConf(cfg).setAppName("ouro demo").setMaster(o.master());
        if (o.master().startsWith("local")) { // a local run stays on loopback
            String ip = System.getenv().getOrDefault("SPARK_LOCAL_IP", "127.0.0.1");
            conf.set("spark.driver.host", ip).set("spark.driver.bindAddress", ip);
        }
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            jsc.setLogLevel("WARN");
            log.accept("Spark UI (while the demo runs): " + jsc.sc().uiWebUrl().getOrElse(() -> "(disabled)")
                    + ", application " + jsc.sc().applicationId() + ", master " + o.master());

            // 2. tokenizer and shards
            long s1 = System.nanoTime();
            byte[] json = BpeTrainer.train(jsc, trainText, vocab, List.of("<|endoftext|>"), 2);
            String tokFile = out + "/tokenizer.json";
            try (var os = fs.create(new Path(tokFile), true)) {
                os.write(json);
            }
            BpeTokenizer tok = BpeTokenizer.fromJson(json, tokFile);
            log.accept(String.format(Locale.ROOT, "[2/5] tokenizer: byte-level BPE with %d ids trained by a Spark job"
                    + " in %.1f s -> %s", tok.vocabSize(), (System.nanoTime() - s1) / 1e9, tokFile));
            long s2 = System.nanoTime();
            fs.delete(new Path(out + "/data"), true); // a new tokenizer: the old shards are stale
            TokenizeJob.Summary ts = TokenizeJob.run(jsc, new TokenizeJob.Options(trainText, "text", "text", null,
                    tokFile, out + "/data", corpusName.startsWith("Mano") ? "mano" : "corpus", 1L << 22, 1 << 20, -1),
                    line -> log.accept("      " + line));
            double tokenizeSeconds = (System.nanoTime() - s2) / 1e9;
            if (documents < 0) {
                documents = ts.documents();
            }
            log.accept(String.format(Locale.ROOT, "[3/5] shards: %d documents, %d tokens in %d Arrow shard(s) in %.1f s"
                    + " -> %s", ts.documents(), ts.tokens(), ts.shards(), tokenizeSeconds, manifest));
            if (singleText != null) {
                fs.delete(new Path(out + "/data-single"), true);
                TokenizeJob.Summary t1 = TokenizeJob.run(jsc, new TokenizeJob.Options(singleText, "text", "text", null,
                        tokFile, out + "/data-single", "single", 1L << 22, 1 << 20, -1), line -> { });
                log.accept(String.format(Locale.ROOT, "      and the curriculum's single operations: %d documents,"
                        + " %d tokens -> %s/data-single/manifest.json", t1.documents(), t1.tokens(), out));
            }

            // 3. training
            log.accept(String.format(Locale.ROOT, "[4/5] training: %d workers, %d steps in %d stages, device %s;"
                    + " checkpoints under %s/checkpoints", cfg.train().workers(), cfg.totalSteps(), cfg.stages().size(),
                    device, out));
            fs.delete(new Path(out + "/checkpoints"), true); // a new run, not a resumed one
            long s3 = System.nanoTime();
            Trainer.Result r = new Trainer(jsc, cfg, new Progress(cfg, log, 10_000)).run(true, false);
            double trainSeconds = (System.nanoTime() - s3) / 1e9;
            long tokens = 0;
            List<String> stageOfStep = new ArrayList<>();
            for (StepMetrics m : r.steps()) {
                tokens += m.tokens();
                stageOfStep.add(cfg.stageAt(m.step()).name());
            }

            // 4. evaluation
            AnswerEval.Result ans = null;
            if (!heldout.isEmpty()) {
                long s4 = System.nanoTime();
                Stage lastStage = cfg.stages().get(cfg.stages().size() - 1);
                ans = AnswerEval.run(tok, lastStage.model(), r.parameters(), heldout, 128, 8, o.modulus());
                log.accept(String.format(Locale.ROOT, "[5/5] evaluated %d held-out expressions at T = %d in %.1f s",
                        ans.expressions(), lastStage.model().steps(), (System.nanoTime() - s4) / 1e9));
            }
            DemoReport.Facts f = new DemoReport.Facts(describeDevice(device), corpusName, documents, tok.vocabSize(),
                    ts.tokens(), tokenizeSeconds, r.steps(), stageOfStep, r.validations(), ans, trainSeconds,
                    tokens / trainSeconds, out + "/checkpoints", out, (System.nanoTime() - t0) / 1e9,
                    heldout.isEmpty() ? null : Mano.floor(o.minOps(), o.maxOps(), 200_000, o.modulus(), o.form()),
                    cfg.stages().get(cfg.stages().size() - 1).layout().answerOnly());
            List<String> text = DemoReport.text(f);
            try (var os = fs.create(new Path(out + "/report.txt"), true)) {
                os.write((String.join("\n", text) + "\n").getBytes(StandardCharsets.UTF_8));
            }
            try (var os = fs.create(new Path(out + "/report.html"), true)) {
                os.write(DemoReport.html(f).getBytes(StandardCharsets.UTF_8));
            }
            try (var os = fs.create(new Path(out + "/report.json"), true)) {
                os.write(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(DemoReport.json(f)));
            }
            for (String line : text) {
                log.accept(line);
            }
            if (o.lingerSeconds() > 0) {
                log.accept("keeping the Spark UI up for " + o.lingerSeconds() + " s");
                Thread.sleep(o.lingerSeconds() * 1000L);
            }
            return f;
        }
    }

    /**
     * {@code auto}: an OpenCL GPU if there is one, else the Java backend (as fast as a CPU OpenCL device at the
     * demo's shapes, without its kernel compilation), said so plainly. Any other value is the config's {@code train.device} syntax, used as is.
     */
    static String chooseDevice(String wanted, Consumer<String> log) {
        if (!wanted.equals("auto")) {
            log.accept("device: " + wanted + " (as asked)");
            return wanted;
        }
        List<OpenCLDevice> all = OpenClDevices.list();
        for (OpenCLDevice d : all) {
            if (d.getType() == Device.TYPE.GPU) {
                log.accept("device: gpu, the OpenCL GPU " + OpenClDevices.describe(d));
                return "gpu";
            }
        }
        if (!all.isEmpty()) {
            log.accept("device: java, the Java backend: no OpenCL GPU here, and at the demo's tiny shapes the CPU OpenCL"
                    + " device (" + OpenClDevices.describe(all.get(0)) + ") is no faster and compiles its kernels"
                    + " first (docs/demo.md, \"Why the demo learns\"); --device opencl:0 runs the kernels there");
            return "java";
        }
        log.accept("device: java. No OpenCL device was found (no OpenCL runtime or ICD), so the demo uses the Java"
                + " reference backend; install an OpenCL driver (e.g. pocl-opencl-icd) to run the kernels");
        return "java";
    }

    private static String describeDevice(String spec) {
        if (spec.equals("java")) {
            return "java (the Java reference backend)";
        }
        try {
            return spec + " (OpenCL: " + OpenClDevices.describe(OpenClDevices.select(
                    io.ouro.worker.model.DeviceSpec.parse(spec))) + ")";
        } catch (RuntimeException e) {
            return spec;
        }
    }

    static List<Mano.Expr> readHeldout(FileSystem fs, Path dir, int limit) throws IOException {
        List<Mano.Expr> out = new ArrayList<>();
        for (var st : fs.listStatus(dir)) {
            if (st.getPath().getName().startsWith(".") || st.getPath().getName().startsWith("_")) {
                continue;
            }
            try (BufferedReader r = new BufferedReader(new InputStreamReader(fs.open(st.getPath()),
                    StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null && out.size() < limit; ) {
                    out.add(Mano.Expr.parse(line));
                }
            }
        }
        return out;
    }

    /**
     * The console's view of training: each step's line (all of them stay in {@code run.out/metrics}) becomes a
     * progress line per stage, at its first and last step and every {@code everyMs} between, with the stage's ETA
     * (its mean step time so far) and the training's (later stages estimated from this stage's step time in
     * proportion to their recurrent steps x sequence length x batch); other lines pass through.
     */
    static final class Progress implements Consumer<String> {
        private static final java.util.regex.Pattern STEP =
                java.util.regex.Pattern.compile("^stage (\\S+) step (\\d+) loss (\\S+)");
        private final TrainConfig cfg;
        private final Consumer<String> log;
        private final long everyMs;
        private String stage;
        private long stageStartNanos, lastPrint, firstStep;

        Progress(TrainConfig cfg, Consumer<String> log, long everyMs) {
            this.cfg = cfg;
            this.log = log;
            this.everyMs = everyMs;
        }

        @Override
        public void accept(String line) {
            java.util.regex.Matcher m = STEP.matcher(line);
            if (!m.find()) {
                log.accept(line);
                return;
            }
            long step = Long.parseLong(m.group(2));
            Stage st = cfg.stageAt(step);
            long now = System.nanoTime();
            if (!st.name().equals(stage)) {
                stage = st.name();
                stageStartNanos = now;
                firstStep = step;
                lastPrint = 0;
            }
            boolean last = step == st.endStep() - 1;
            if (!(step == firstStep || last || (now - lastPrint) / 1e6 >= everyMs)) {
                return;
            }
            lastPrint = now;
            long done = step - firstStep + 1;
            double perStep = (now - stageStartNanos) / 1e9 / Math.max(1, done - 1); // the first step has no duration
            double stageEta = perStep * (st.endStep() - 1 - step);
            double eta = stageEta;
            double cost = (double) st.model().steps() * st.seqLen() * st.batchPerWorker();
            for (Stage later : cfg.stages()) {
                if (later.index() > st.index()) {
                    eta += perStep * later.steps() * later.model().steps() * later.seqLen() * later.batchPerWorker() / cost;
                }
            }
            String head = String.format(Locale.ROOT, "[4/5] training: stage %s (%d/%d, T %d) step %d/%d (%.0f%%), loss %s",
                    st.name(), st.index() + 1, cfg.stages().size(), st.model().steps(), step - st.firstStep() + 1,
                    st.steps(), 100.0 * (step - st.firstStep() + 1) / st.steps(), m.group(3));
            log.accept(done < 2 ? head : head + String.format(Locale.ROOT, ", %.2f s/step; ETA stage %.0f s,"
                    + " training %.0f s", perStep, stageEta, eta));
        }
    }

    /** A local path becomes a file: URI; a URI stays as it is. */
    static String uri(String pathOrUri) {
        if (pathOrUri.matches("^[a-zA-Z][a-zA-Z0-9+.-]*:.*")) {
            return pathOrUri.replaceAll("/+$", "");
        }
        return java.nio.file.Path.of(pathOrUri).toAbsolutePath().normalize().toUri().toString().replaceAll("/+$", "");
    }

    static void log(String line) {
        System.out.println(String.format(Locale.ROOT, "%tT ouro %s", System.currentTimeMillis(), line));
    }
}
