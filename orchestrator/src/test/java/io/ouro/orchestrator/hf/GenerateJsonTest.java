package io.ouro.orchestrator.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.backend.EvalForward;
import io.ouro.worker.hf.HfModelDir;
import io.ouro.worker.hf.Safetensors;
import io.ouro.worker.model.LoopConfig;
import io.ouro.worker.model.ParamInit;
import io.ouro.worker.model.ParamLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ouro generate --json FILE}: one parseable line per prompt whose generated ids decode to the text printed,
 * with a 1-based exit step and a log-probability per id; the first id's log-probability is the one a batched forward
 * of the prompt gives at the exit step.
 */
class GenerateJsonTest {

    @TempDir
    Path tmp;

    @Test
    void jsonLinesParseAndTheirIdsDecodeToThePrintedText() throws Exception {
        LoopConfig cfg = new LoopConfig(17, 32, 2, 2, 48, 3, 10_000, 1e-6, 0.1, 0.3, 7);
        float[] params = ParamInit.initialize(new ParamLayout(cfg));
        Path model = tmp.resolve("hf");
        Path tokFile = LettersTokenizer.write(tmp);
        HfModelDir.write(HfModelDir.local(model), cfg, params, Safetensors.Dtype.F32, 64,
                new HfModelDir.Tokenizer(Files.readAllBytes(tokFile), "<|endoftext|>", 16), Map.of());
        Path json = tmp.resolve("out.jsonl");
        List<String> prompts = List.of("abc", "ponm");
        PrintStream saved = System.out;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        try {
            GenerateApp.main(new String[] {"--model", model.toString(), "--prompt", prompts.get(0),
                    "--max-new", "12", "--exit", "q:0.5", "--json", json.toString()});
            GenerateApp.main(new String[] {"--model", model.toString(), "--prompt", prompts.get(1),
                    "--max-new", "12", "--temperature", "1", "--seed", "3", "--json", tmp.resolve("b.jsonl").toString()});
        } finally {
            System.setOut(saved);
        }
        List<String> out = List.of(printed.toString(StandardCharsets.UTF_8).split("\n"));
        List<String> lines = Files.readAllLines(json, StandardCharsets.UTF_8);
        lines = new java.util.ArrayList<>(lines);
        lines.addAll(Files.readAllLines(tmp.resolve("b.jsonl"), StandardCharsets.UTF_8));
        assertEquals(2, lines.size());
        BpeTokenizer tok = BpeTokenizer.load(tokFile);
        ObjectMapper m = new ObjectMapper();
        for (int i = 0; i < lines.size(); i++) {
            JsonNode n = m.readTree(lines.get(i));
            assertEquals(prompts.get(i), n.get("prompt").asText());
            int count = n.get("ids").size();
            assertTrue(count > 0);
            assertEquals(count, n.get("exit_steps").size());
            assertEquals(count, n.get("logprobs").size());
            boolean eos = n.get("stopped_at_eos").asBoolean();
            int[] ids = new int[eos ? count - 1 : count];
            for (int k = 0; k < ids.length; k++) {
                ids[k] = n.get("ids").get(k).asInt();
            }
            for (int k = 0; k < count; k++) {
                int step = n.get("exit_steps").get(k).asInt();
                assertTrue(step >= 1 && step <= cfg.steps(), "exit step " + step);
                assertTrue(n.get("logprobs").get(k).asDouble() <= 0);
            }
            assertEquals(tok.decode(ids), n.get("text").asText());
            // the printed line is the prompt and the decoded ids
            assertTrue(out.contains(prompts.get(i) + tok.decode(ids)), "printed " + out);
        }

        // the first generated id's log-probability: log-softmax of the prompt's last position at its exit step
        JsonNode first = m.readTree(lines.get(0));
        int[] promptIds = new int[first.get("prompt_ids").size()];
        for (int k = 0; k < promptIds.length; k++) {
            promptIds[k] = first.get("prompt_ids").get(k).asInt();
        }
        assertEquals(16, promptIds[0]);
        int step = first.get("exit_steps").get(0).asInt() - 1, id = first.get("ids").get(0).asInt();
        try (EvalForward f = new EvalForward("java", cfg, params, 1, promptIds.length, true)) {
            f.forward(promptIds, new int[promptIds.length], 1);
            float[] logits = f.logits(step);
            int row = (promptIds.length - 1) * cfg.vocab();
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int v = 0; v < cfg.vocab(); v++) {
                max = Math.max(max, logits[row + v]);
            }
            for (int v = 0; v < cfg.vocab(); v++) {
                sum += Math.exp(logits[row + v] - max);
            }
            assertEquals(logits[row + id] - max - Math.log(sum), first.get("logprobs").get(0).asDouble(), 1e-5);
        }
    }
}
