package io.ouro.orchestrator.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ouro.orchestrator.hf.LettersTokenizer;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.hf.HfModelDir;
import io.ouro.worker.hf.Safetensors;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.ParamLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ouro eval --tasks FILE --predictions FILE}: one JSON line per well-formed item, whose per-step predictions
 * decode from their ids, are right exactly where they equal the answer, and average to the accuracies of the summary.
 */
class TaskPredictionsTest {

    @TempDir
    Path tmp;

    @Test
    void predictionLinesAgreeWithTheirIdsAndTheSummary() throws Exception {
        LoopConfig cfg = new LoopConfig(17, 32, 1, 2, 48, 3, 10_000, 1e-6, 0.1, 0.3, 5);
        Path model = tmp.resolve("hf");
        Path tokFile = LettersTokenizer.write(tmp);
        HfModelDir.write(HfModelDir.local(model), cfg, ParamInit.initialize(new ParamLayout(cfg)),
                Safetensors.Dtype.F32, 64, new HfModelDir.Tokenizer(Files.readAllBytes(tokFile), "<|endoftext|>", 16),
                Map.of());
        Path tasks = tmp.resolve("tasks.jsonl");
        Files.writeString(tasks, String.join("\n",
                "{\"prompt\": \"abc\", \"answer\": \"de\"}",
                "not json",
                "{\"prompt\": \"ghi\", \"answer\": \"j\", \"choices\": [\"a\", \"j\", \"p\"]}",
                "{\"prompt\": \"mno\", \"answer\": \"p\"}") + "\n");
        Path preds = tmp.resolve("preds.jsonl"), summary = tmp.resolve("eval.json");
        EvalApp.main(new String[] {"--model", model.toString(), "--tasks", tasks.toString(), "--q", "0.5",
                "--predictions", preds.toString(), "--json", summary.toString()});

        ObjectMapper m = new ObjectMapper();
        List<String> lines = Files.readAllLines(preds, StandardCharsets.UTF_8);
        assertEquals(3, lines.size());
        BpeTokenizer tok = BpeTokenizer.load(tokFile);
        double[] right = new double[cfg.steps()];
        int[] fileLines = {1, 3, 4};
        for (int i = 0; i < lines.size(); i++) {
            JsonNode n = m.readTree(lines.get(i));
            assertEquals(fileLines[i], n.get("line").asInt());
            String answer = n.get("answer").asText();
            for (int t = 0; t < cfg.steps(); t++) {
                String p = n.get("predicted").get(t).asText();
                boolean ok = n.get("correct").get(t).asBoolean();
                assertEquals(p.equals(answer), ok, "line " + fileLines[i] + " step " + (t + 1));
                if (n.get("predicted_ids") == null) { // multiple choice: one of its choices
                    assertTrue(List.of("a", "j", "p").contains(p), p);
                } else {
                    int[] ids = new int[n.get("predicted_ids").get(t).size()];
                    for (int k = 0; k < ids.length; k++) {
                        ids[k] = n.get("predicted_ids").get(t).get(k).asInt();
                    }
                    assertEquals(tok.decode(ids), p);
                }
                right[t] += ok ? 1 : 0;
            }
            assertEquals(cfg.steps(), n.get("answer_nll").size());
            assertEquals(1, n.get("q_correct").size());
        }
        JsonNode acc = m.readTree(summary.toFile()).get("tasks").get("accuracy");
        for (int t = 0; t < cfg.steps(); t++) {
            assertEquals(right[t] / lines.size(), acc.get(t).asDouble(), 1e-12, "accuracy at step " + (t + 1));
        }
    }
}
