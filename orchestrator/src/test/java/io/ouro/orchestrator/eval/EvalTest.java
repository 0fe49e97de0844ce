package io.ouro.orchestrator.eval;

import io.ouro.tokenizer.TextTokenizer;
import io.ouro.tokenizer.shard.Manifest;
import io.ouro.tokenizer.shard.ShardFormat;
import io.ouro.tokenizer.shard.ShardTable;
import io.ouro.tokenizer.shard.ShardWriter;
import io.ouro.worker.backend.JavaBackend;
import io.ouro.worker.infer.ExitPolicy;
import io.ouro.worker.infer.Generator;
import io.ouro.worker.infer.KvCache;
import io.ouro.worker.infer.TokenSampler;
import io.ouro.worker.model.AdamWConfig;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.Objective;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.StepReport;
import io.ouro.worker.model.StepShape;
import io.ouro.worker.reference.ReferenceModel;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ouro eval} and the task scorer on a model trained here (300 steps, a few seconds) on a synthetic rule: after
 * an EOS (id 16) each token is the previous plus 3, modulo 16. Tokens 0..15 are the letters a..p.
 */
class EvalTest {

    static final int EOS = 16, T = 3;
    static final LoopConfig CFG = new LoopConfig(17, 32, 1, 2, 48, T, 10_000, 1e-6, 0.1, 0.1, 11);
    static float[] params;

    /** Letters a..p are ids 0..15; EOS is 16 and has no text. */
    static final TextTokenizer LETTERS = new TextTokenizer() {
        @Override
        public int[] encode(String text) {
            return text.chars().map(c -> c - 'a').toArray();
        }

        @Override
        public String decode(int[] ids) {
            StringBuilder b = new StringBuilder();
            for (int id : ids) {
                b.append(id == EOS ? "" : String.valueOf((char) ('a' + id)));
            }
            return b.toString();
        }

        @Override
        public int vocabSize() {
            return 17;
        }

        @Override
        public int eosId() {
            return EOS;
        }

        @Override
        public String fingerprint() {
            return "letters";
        }
    };

    @TempDir
    java.nio.file.Path tmp;

    @BeforeAll
    static void train() {
        int batch = 8, seqLen = 16, n = batch * seqLen;
        Random rnd = new Random(1);
        try (JavaBackend b = new JavaBackend(CFG, AdamWConfig.ouro(), StepShape.whole(batch, seqLen))) {
            b.setParameters(ParamInit.initialize(b.layout()));
            for (int step = 0; step < 300; step++) {
                int[] tokens = new int[n], targets = new int[n];
                for (int s = 0; s < batch; s++) {
                    int x = rnd.nextInt(16);
                    tokens[s * seqLen] = EOS;
                    targets[s * seqLen] = x;
                    for (int i = 1; i < seqLen; i++) {
                        tokens[s * seqLen + i] = x;
                        x = (x + 3) % 16;
                        targets[s * seqLen + i] = x;
                    }
                }
                b.zeroGradients();
                b.forwardBackward(tokens, targets, Objective.stageOne(0.1));
                b.clipGradients(1.0);
                b.adamw(3e-3, t -> true);
            }
            params = b.parameters();
        }
    }

    static String rule(int from, int len) {
        StringBuilder b = new StringBuilder();
        for (int i = 0, x = from; i < len; i++, x = (x + 3) % 16) {
            b.append((char) ('a' + x));
        }
        return b.toString();
    }

    /** Items following the rule (1 to 3 answer letters, short prompts so early steps err) and some with wrong answers. */
    static List<TaskScorer.Item> items() {
        Random r = new Random(5);
        List<TaskScorer.Item> items = new ArrayList<>();
        for (int i = 0; i < 60; i++) {
            int from = r.nextInt(16), plen = 1 + r.nextInt(4), alen = 1 + r.nextInt(3);
            String seq = rule(from, plen + alen);
            String answer = i % 5 == 4 ? rule(r.nextInt(16), alen) : seq.substring(plen);
            items.add(new TaskScorer.Item(i + 1, seq.substring(0, plen), answer, List.of()));
        }
        return items;
    }

    static int[] prompt(String p) {
        int[] ids = LETTERS.encode(p), in = new int[ids.length + 1];
        in[0] = EOS;
        System.arraycopy(ids, 0, in, 1, ids.length);
        return in;
    }

    @Test
    void accuracyPerStepAndQExitEqualOneAtATimeGreedyDecoding() {
        List<TaskScorer.Item> items = items();
        double[] qs = {0, 0.3, 0.6, 0.9, 1};
        TaskScorer.Result r = TaskScorer.score(LETTERS, CFG, params, items, 7, qs);
        System.out.println("EvalTest: accuracy per step " + Arrays.toString(r.accuracy()) + ", gate " + r.gateAccuracy()
                + ", Q-exit " + Arrays.toString(r.qAccuracy()) + " at mean steps " + Arrays.toString(r.qMeanExitStep()));
        Generator g = new Generator(CFG, params);
        double[] acc = new double[T], qAcc = new double[qs.length];
        int single = 0;
        for (int i = 0; i < items.size(); i++) {
            TaskScorer.Item it = items.get(i);
            int[] want = LETTERS.encode(it.answer());
            for (int k = 1; k <= T; k++) {
                int[] got = g.generate(prompt(it.prompt()), want.length, -1, ExitPolicy.atStep(k), KvCache.Mode.FULL,
                        TokenSampler.greedy()).tokens();
                boolean ok = Arrays.equals(got, want);
                assertEquals(ok, r.scored().get(i).correct()[k - 1], "line " + it.line() + " at step " + k);
                acc[k - 1] += ok ? 1.0 / items.size() : 0;
            }
            // one answer token: Q-exit decides on the prompt's last token, computed with every step as at prefill
            if (want.length == 1) {
                single++;
                for (int k = 0; k < qs.length; k++) {
                    int[] got = g.generate(prompt(it.prompt()), 1, -1, ExitPolicy.qExit(qs[k]), KvCache.Mode.FULL,
                            TokenSampler.greedy()).tokens();
                    assertEquals(got[0] == want[0], r.scored().get(i).qCorrect()[k], "line " + it.line() + " q " + qs[k]);
                }
            }
        }
        assertTrue(single >= 10, "enough one-token answers: " + single);
        assertArrayEquals(acc, r.accuracy(), 1e-12);
        assertTrue(r.accuracy()[T - 1] >= 0.75, "the rule is learnt: " + Arrays.toString(r.accuracy()));
        assertTrue(r.accuracy()[T - 1] <= 0.85, "the wrong answers are wrong: " + Arrays.toString(r.accuracy()));
        assertEquals(1.0, r.qMeanExitStep()[0], 0, "q = 0 exits at step 1");
        assertEquals(T, r.qMeanExitStep()[qs.length - 1], 0, "q = 1 exits at step T");
        assertEquals(r.accuracy()[0], r.qAccuracy()[0], 0);
        assertEquals(r.accuracy()[T - 1], r.qAccuracy()[qs.length - 1], 0);
        assertEquals(1.0, Arrays.stream(r.meanExit()).sum(), 1e-6);
        // batching and padding change nothing
        TaskScorer.Result one = TaskScorer.score(LETTERS, CFG, params, items, 1, qs);
        assertArrayEquals(r.accuracy(), one.accuracy(), 0);
        assertArrayEquals(r.answerNll(), one.answerNll(), 1e-4);
        assertArrayEquals(r.qAccuracy(), one.qAccuracy(), 0);
    }

    @Test
    void tasksScoreOnTheOpenClBackendAsOnJava() {
        List<TaskScorer.Item> items = new ArrayList<>(items().subList(0, 20));
        items.add(new TaskScorer.Item(99, "adgj", "mp", List.of("ab", "mp", "cc")));
        double[] qs = {0.3, 0.9};
        String device = System.getProperty("ouro.test.device", "opencl:0");
        TaskScorer.Result java = TaskScorer.score(LETTERS, CFG, params, items, 7, qs, "java");
        TaskScorer.Result cl = TaskScorer.score(LETTERS, CFG, params, items, 7, qs, device);
        double worst = 0;
        for (int t = 0; t < T; t++) {
            worst = Math.max(worst, Math.abs(java.answerNll()[t] - cl.answerNll()[t]));
        }
        System.out.println("EvalTest: tasks on " + device + ": accuracy per step " + Arrays.toString(cl.accuracy())
                + " (java " + Arrays.toString(java.accuracy()) + "), answer NLL per step within " + worst);
        assertArrayEquals(java.accuracy(), cl.accuracy(), 0);
        assertArrayEquals(java.qAccuracy(), cl.qAccuracy(), 0);
        assertArrayEquals(java.qMeanExitStep(), cl.qMeanExitStep(), 0);
        assertArrayEquals(java.meanExit(), cl.meanExit(), 1e-5);
        assertTrue(worst <= 1e-4, "answer NLL differs by " + worst);
        for (int i = 0; i < items.size(); i++) {
            for (int t = 0; t < T; t++) {
                assertEquals(java.scored().get(i).predicted()[t], cl.scored().get(i).predicted()[t], "line " + i);
            }
        }
    }

    @Test
    void multipleChoicePicksTheAnswerOfHighestLikelihood() {
        List<TaskScorer.Item> items = List.of(
                new TaskScorer.Item(1, "adgj", "mp", List.of("ab", "mp", "cc")),
                new TaskScorer.Item(2, "bekn", "ad", List.of("ad", "ae")),
                new TaskScorer.Item(3, "cfil", "ob", List.of("bo", "ob", "oo")));
        TaskScorer.Result r = TaskScorer.score(LETTERS, CFG, params, items, 2, new double[] {0.5});
        assertEquals(1.0, r.accuracy()[T - 1], "at step T: " + Arrays.toString(r.accuracy()));
        for (int i = 0; i < items.size(); i++) {
            TaskScorer.Scored s = r.scored().get(i);
            assertEquals(items.get(i).answer(), s.predicted()[T - 1]);
            // the answer's NLL is its CE summed over its tokens, from a direct forward of prompt + answer
            int[] in = prompt(items.get(i).prompt() + items.get(i).answer());
            int len = in.length - 1;
            int[] tokens = Arrays.copyOf(in, len), targets = new int[len];
            Arrays.fill(targets, -1);
            targets[len - 2] = in[len - 1];
            targets[len - 1] = in[len];
            StepReport rep = new ReferenceModel(CFG).forward(params, tokens, targets, 1, len, Objective.stageOne(0), false);
            assertEquals(2 * rep.stepCe()[T - 1], s.answerNll()[T - 1], 1e-4);
        }
    }

    @Test
    void malformedLinesAreCountedWithTheirLineNumbers() {
        TaskScorer.Tasks t = TaskScorer.parse("tasks.jsonl", List.of(
                "{\"prompt\": \"adg\", \"answer\": \"j\"}",
                "not json",
                "",
                "{\"prompt\": 1, \"answer\": \"j\"}",
                "{\"prompt\": \"adg\"}",
                "{\"prompt\": \"adg\", \"answer\": \"j\", \"choices\": [\"a\", \"b\"]}",
                "[1, 2]",
                "{\"prompt\": \"\", \"answer\": \"a\", \"choices\": [\"a\", \"b\"]}"));
        assertEquals(2, t.items().size());
        assertEquals(List.of(1, 8), t.items().stream().map(TaskScorer.Item::line).toList());
        assertEquals(5, t.bad().size(), t.bad().toString());
        assertEquals(List.of("tasks.jsonl:2:", "tasks.jsonl:4:", "tasks.jsonl:5:", "tasks.jsonl:6:", "tasks.jsonl:7:"),
                t.bad().stream().map(b -> b.substring(0, b.indexOf(':', b.indexOf(':') + 1) + 1)).toList());
        assertTrue(t.bad().get(1).contains("\"prompt\": expected a string"), t.bad().get(1));
        assertTrue(t.bad().get(2).contains("\"answer\""), t.bad().get(2));
        assertTrue(t.bad().get(3).contains("not one of \"choices\""), t.bad().get(3));
    }

    /** Writes one shard of rule documents of random lengths and its manifest; returns the token stream. */
    static int[] writeCorpus(FileSystem fs, Path dir, int tokens, long seed) throws IOException {
        Random r = new Random(seed);
        int[] all = new int[tokens + 64];
        int at = 0;
        String name = "rule-u00000-0000.arrow";
        long key = ShardFormat.crcKey("rule", name, "letters", "in");
        ShardWriter.Info info;
        try (FSDataOutputStream o = fs.create(new Path(dir, name), true);
             ShardWriter w = new ShardWriter(o, true, "rule", "letters", EOS, ShardFormat.DEFAULT_BATCH_TOKENS, key)) {
            while (w.tokens() < tokens) {
                int n = 3 + r.nextInt(30);
                int[] doc = LETTERS.encode(rule(r.nextInt(16), n));
                w.add(doc, n);
                System.arraycopy(doc, 0, all, at, n);
                all[at + n] = EOS;
                at += n + 1;
            }
            info = w.finish();
        }
        ShardTable t = new ShardTable();
        t.add(new ShardTable.Entry(name, info.documents(), info.tokens(), info.bytes(), info.sha256(), info.indexOffset(),
                key));
        Manifest m = new Manifest(ShardFormat.FORMAT, "rule", "in", "letters.json", "a".repeat(64), 17, EOS, "uint16",
                ShardFormat.DEFAULT_BATCH_TOKENS, t, 0, Map.of(), Map.of(), "");
        try (FSDataOutputStream o = fs.create(new Path(dir, "manifest.json"), true)) {
            m.write(o);
        }
        return Arrays.copyOf(all, at);
    }

    @Test
    @Timeout(120)
    void perStepCeOfTheSparkJobEqualsADirectForwardOfTheSameWindows() throws Exception {
        FileSystem fs = FileSystem.getLocal(new Configuration());
        int seqLen = 16;
        List<String> manifests = new ArrayList<>();
        List<int[]> streams = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            Path dir = new Path(tmp.resolve("m" + i).toUri());
            streams.add(writeCorpus(fs, dir, 500 + 300 * i, 7 + i));
            manifests.add(dir + "/manifest.json");
        }
        double[] qs = {0, 0.5, 1};
        EvalApp.Perplexity p;
        SparkConf sc = new SparkConf().setAppName("EvalTest").setMaster("local[2]")
                .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1")
                .set("spark.ui.enabled", "false");
        try (JavaSparkContext jsc = new JavaSparkContext(sc)) {
            p = EvalApp.perplexity(jsc, CFG, params, manifests, seqLen, 5, 1_000, qs, 3);
        }
        // every window of both streams, in one forward
        List<int[]> windows = new ArrayList<>();
        for (int[] s : streams) {
            for (int w = 0; (w + 1) * seqLen + 1 <= s.length; w++) {
                windows.add(Arrays.copyOfRange(s, w * seqLen, w * seqLen + seqLen + 1));
            }
        }
        int n = windows.size() * seqLen;
        int[] tokens = new int[n], targets = new int[n];
        for (int w = 0; w < windows.size(); w++) {
            System.arraycopy(windows.get(w), 0, tokens, w * seqLen, seqLen);
            System.arraycopy(windows.get(w), 1, targets, w * seqLen, seqLen);
        }
        StepReport rep = new ReferenceModel(CFG).forward(params, tokens, targets, windows.size(), seqLen,
                Objective.stageOne(0), false);
        System.out.print("EvalTest: direct CE per step " + Arrays.toString(rep.stepCe()) + "\n" + EvalApp.table(p));
        assertEquals(windows.size(), p.windows());
        assertEquals(n, p.tokens());
        for (int t = 0; t < T; t++) {
            assertEquals(rep.stepCe()[t], p.stepCe()[t], 1e-5, "step " + (t + 1));
            assertEquals(rep.meanExit()[t], p.meanExit()[t], 1e-5, "exit at step " + (t + 1));
        }
        assertTrue(p.stepCe()[T - 1] < 1.0, "the rule is learnt: " + Arrays.toString(p.stepCe()));
        assertEquals(1.0, p.qExitStep()[0], 0, "q = 0 exits at step 1");
        assertEquals(p.stepCe()[0], p.qCe()[0], 1e-9);
        assertEquals(T, p.qExitStep()[2], 0, "q = 1 exits at step T");
        assertEquals(p.stepCe()[T - 1], p.qCe()[2], 1e-9);
        assertTrue(p.qExitStep()[1] >= 1 && p.qExitStep()[1] <= T);
    }

    /**
     * {@code ouro eval} end to end ({@link EvalApp#main}, Spark local mode) on an exported HF directory of the model
     * trained here and a text file through a tokenizer file: the JSON's per-step CE and perplexity equal a direct
     * forward of the same windows, on the Java backend and on an OpenCL device (forward only).
     */
    @Test
    @Timeout(300)
    void mainEvaluatesTextThroughATokenizerOnBothBackendsAndWritesJson() throws Exception {
        java.nio.file.Path model = tmp.resolve("hf");
        io.ouro.worker.hf.HfModelDir.write(io.ouro.worker.hf.HfModelDir.local(model), CFG, params,
                io.ouro.worker.hf.Safetensors.Dtype.F32, 64, null, Map.of());
        // a BPE tokenizer.json whose vocabulary is the letters a..p (ids 0..15) and EOS (16), no merges
        StringBuilder vocab = new StringBuilder();
        for (int i = 0; i < 16; i++) {
            vocab.append(i > 0 ? "," : "").append('"').append((char) ('a' + i)).append("\":").append(i);
        }
        java.nio.file.Path tokFile = tmp.resolve("letters-tokenizer.json");
        java.nio.file.Files.writeString(tokFile, "{\"model\":{\"type\":\"BPE\",\"vocab\":{" + vocab + "},\"merges\":[]},"
                + "\"added_tokens\":[{\"id\":16,\"content\":\"<|endoftext|>\",\"special\":true}]}");
        // documents following the rule, one blank line between them (and a stray one at the end)
        Random r = new Random(9);
        StringBuilder text = new StringBuilder();
        List<String> docs = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            String doc = rule(r.nextInt(16), 5 + r.nextInt(20));
            docs.add(doc);
            text.append(doc).append(i % 3 == 0 ? "\n\n\n" : "\n\n");
        }
        java.nio.file.Path textFile = tmp.resolve("docs.txt");
        java.nio.file.Files.writeString(textFile, text);

        int seqLen = 16;
        int total = 0;
        for (String d : docs) {
            total += d.length() + 1;
        }
        int[] stream = new int[total];
        int at = 0;
        for (String d : docs) {
            stream[at++] = EOS;
            for (int id : LETTERS.encode(d)) {
                stream[at++] = id;
            }
        }
        int windows = (stream.length - 1) / seqLen, n = windows * seqLen;
        int[] tokens = new int[n], targets = new int[n];
        for (int w = 0; w < windows; w++) {
            System.arraycopy(stream, w * seqLen, tokens, w * seqLen, seqLen);
            System.arraycopy(stream, w * seqLen + 1, targets, w * seqLen, seqLen);
        }
        StepReport rep = new ReferenceModel(CFG).forward(params, tokens, targets, windows, seqLen,
                Objective.stageOne(0), false);

        com.fasterxml.jackson.databind.JsonNode[] out = new com.fasterxml.jackson.databind.JsonNode[2];
        String[] devices = {"java", System.getProperty("ouro.test.device", "opencl:0")};
        for (int b = 0; b < 2; b++) {
            java.nio.file.Path json = tmp.resolve("eval-" + b + ".json");
            EvalApp.main(new String[] {"--model", model.toString(), "--tokenizer", tokFile.toString(), "--text",
                    textFile.toUri().toString(), "--seq-len", String.valueOf(seqLen), "--batch", "4", "--q", "0,1",
                    "--partitions", "2", "--master", "local[2]", "--device", devices[b], "--json", json.toString()});
            out[b] = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json.toFile());
            com.fasterxml.jackson.databind.JsonNode p = out[b].path("perplexity");
            System.out.println("EvalTest: ouro eval --device " + devices[b] + " --text: " + p);
            assertEquals(devices[b], out[b].path("device").asText());
            assertEquals(windows, p.path("windows").asLong());
            assertEquals(n, p.path("tokens").asLong());
            for (int t = 0; t < T; t++) {
                assertEquals(rep.stepCe()[t], p.path("step_ce").get(t).asDouble(), b == 0 ? 1e-6 : 1e-5, devices[b]
                        + " step " + (t + 1));
                assertEquals(Math.exp(rep.stepCe()[t]), p.path("step_perplexity").get(t).asDouble(),
                        Math.exp(rep.stepCe()[t]) * (b == 0 ? 1e-6 : 1e-5), devices[b] + " perplexity at step " + (t + 1));
                assertEquals(rep.meanExit()[t], p.path("mean_exit").get(t).asDouble(), 1e-5);
            }
            assertEquals(1.0, p.path("q_mean_exit_step").get(0).asDouble(), 0);
            assertEquals(T, p.path("q_mean_exit_step").get(1).asDouble(), 0);
        }
        double worst = 0;
        for (int t = 0; t < T; t++) {
            worst = Math.max(worst, Math.abs(out[0].path("perplexity").path("step_ce").get(t).asDouble()
                    - out[1].path("perplexity").path("step_ce").get(t).asDouble()));
        }
        System.out.printf("EvalTest: per-step CE, OpenCL vs Java, max difference %.2e%n", worst);
        // the two backends' forward differs only in float summation order: 4.4e-8 on pocl over 400 tokens of CE
        // ~0.6; 5e-6 leaves two orders of magnitude for a GPU's reductions and is half what each backend may be
        // off the reference above, so it says more than those two bounds together
        assertTrue(worst <= 5e-6, "per-step CE, OpenCL vs Java, differs by " + worst);
    }

    @Test
    void textFilesBecomeDocumentsAfterAnEosByParagraphOrByLine() {
        assertArrayEquals(new int[] {EOS, 0, 1, EOS, 2, 3}, EvalApp.tokenizeText("x", "ab\n\n\ncd\n", LETTERS, 17, false));
        assertArrayEquals(new int[] {EOS, 0, 1, EOS, 2, 3, EOS, 4}, EvalApp.tokenizeText("x", "ab\ncd\n\ne", LETTERS, 17,
                true));
        // a newline inside a paragraph is text the letters' tokenizer has no id for: an error naming the file
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> EvalApp.tokenizeText("notes.txt", "ab\ncd", LETTERS, 17, false));
        assertTrue(e.getMessage().contains("--text notes.txt"), e.getMessage());
    }
}
