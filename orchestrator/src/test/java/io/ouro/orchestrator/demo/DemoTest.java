package io.ouro.orchestrator.demo;

import io.ouro.orchestrator.checkpoint.CheckpointStore;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamLayout;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ouro demo} end to end with a shortened budget: corpus, tokenizer job, tokenization job, two-stage
 * training with two workers, evaluation and report; the report's accuracy comes from the checkpointed weights.
 */
class DemoTest {

    @TempDir
    Path tmp;

    @Test
    @Timeout(600)
    void theDemoRunsEndToEndAndItsReportComesFromTheTrainedWeights() throws Exception {
        List<String> log = new ArrayList<>();
        DemoApp.Options o = new DemoApp.Options(tmp.toString(), null, "../pipeline-configs/mano-demo.yaml", "auto", 0.1,
                4000, 200, 1, 2, "local[2]", 0, 200);
        DemoReport.Facts f = DemoApp.run(o, line -> {
            System.out.println(line);
            log.add(line);
        });
        String all = String.join("\n", log);
        assertTrue(all.contains("Spark UI (while the demo runs): http://"), "the Spark UI address is printed");
        assertTrue(all.contains("device: opencl:0") || all.contains("device: gpu") || all.contains(
                "No OpenCL device was found"), "the device choice is said");
        assertTrue(all.contains("[2/5] tokenizer") && all.contains("[3/5] shards") && all.contains("[4/5] training"));
        assertTrue(all.contains("stage t4 begins at step 30: sequence length 32 -> 64") && all.contains("recurrent steps 2 -> 4"),
                "the stage change is logged");

        TrainConfig cfg = TrainConfig.load(tmp.resolve("config.yaml"));
        assertEquals(List.of(30L, 15L), cfg.stages().stream().map(TrainConfig.Stage::steps).toList(), "steps scaled");
        assertEquals(List.of(2, 4), cfg.stages().stream().map(s -> s.model().steps()).toList(), "T = 2, then 4");
        assertEquals(List.of(32, 64), cfg.stages().stream().map(TrainConfig.Stage::seqLen).toList());
        assertEquals(45, f.steps().size());
        assertEquals(4000, f.documents());
        assertTrue(f.tokens() > 4000 * 5, "every document has at least 5 tokens and an EOS: " + f.tokens());
        assertTrue(f.tokensPerSecond() > 0);
        assertFalse(f.validations().isEmpty(), "validation ran");
        assertEquals(4, f.validations().get(f.validations().size() - 1)[1].length, "validation CE per loop step at T = 4");
        double first = f.steps().get(0).loss(), last = f.steps().get(f.steps().size() - 1).loss();
        assertTrue(last < first - 1.0, "the loss falls: " + first + " -> " + last);

        AnswerEval.Result a = f.answers();
        assertNotNull(a);
        assertEquals(200, a.expressions());
        assertEquals(4, a.accuracy().length);
        double exitSum = 0;
        for (double e : a.meanExit()) {
            exitSum += e;
        }
        assertEquals(1.0, exitSum, 1e-4, "the exit distribution sums to one");

        // the report's figures are the final weights': evaluate the last checkpoint again, one expression at a time
        CheckpointStore store = new CheckpointStore(cfg.run().out(), 5, new Configuration());
        LoopConfig model = cfg.stages().get(1).model();
        float[] params = store.load(45, new ParamLayout(model), cfg.hash()).params();
        BpeTokenizer tok = BpeTokenizer.load(tmp.resolve("tokenizer.json"));
        List<Mano.Expr> held = DemoApp.readHeldout(org.apache.hadoop.fs.FileSystem.getLocal(new Configuration()),
                new org.apache.hadoop.fs.Path(tmp.resolve("corpus/heldout").toUri()), 200);
        AnswerEval.Result one = AnswerEval.run(tok, model, params, held, 1, 0);
        assertArrayEquals(a.accuracy(), one.accuracy(), 1e-12, "padding and batching do not change the answers");
        assertArrayEquals(a.answerCe(), one.answerCe(), 1e-4);

        String html = Files.readString(tmp.resolve("report.html"));
        assertTrue(html.contains("<svg") && html.contains("<polyline") && html.contains("<polygon"), "charts drawn");
        assertTrue(html.contains("loop step 4") && html.contains("exit at step 4"));
        String txt = Files.readString(tmp.resolve("report.txt"));
        assertTrue(txt.contains("answer accuracy on 200 held-out expressions"), txt);
        assertTrue(txt.contains("checkpoints: " + cfg.run().out() + "/checkpoints"), txt);
        assertTrue(Files.isDirectory(tmp.resolve("checkpoints").resolve(CheckpointStore.dirName(45))));
    }
}
