package io.ouro.orchestrator.hf;

import io.ouro.tokenizer.cli.Args;
import io.ouro.tokenizer.BpeTokenizer;
import io.ouro.worker.backend.Backends;
import io.ouro.worker.infer.DecodeOps;
import io.ouro.worker.infer.ExitPolicy;
import io.ouro.worker.infer.Generator;
import io.ouro.worker.infer.KvCache;
import io.ouro.worker.infer.TokenSampler;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code ouro generate}: prompts in, text out, with a KV cache (see {@link Generator}) on the backend {@code --device}
 * names (the Java backend by default; on an OpenCL device the cache lives on the device, sized for the longest prompt
 * and {@code --max-new}). Each prompt is fed after an EOS, as documents start in the packed training stream; one line
 * of figures follows each text. With {@code --json FILE} each prompt also gets one JSON line there: the prompt's and
 * the generated token ids, the decoded text, and per generated token its 1-based exit step and log-probability (the
 * ids tell apart generations whose byte-level tokens print alike).
 */
public final class GenerateApp {

    static final String USAGE = "ouro generate (--model DIR | --config FILE [--checkpoint DIR]) [--tokenizer FILE]"
            + " (--prompt TEXT | --prompts FILE) [--max-new N] [--exit all|step:K|q:Q] [--cache full|last_step|average]"
            + " [--temperature T] [--top-k K] [--top-p P] [--seed S] [--device java|cpu|gpu|opencl:<i>] [--json FILE]";

    private static final ObjectMapper JSON = new ObjectMapper();

    private GenerateApp() {
    }

    public static void main(String[] args) throws IOException {
        Args a = Args.orExit(args, USAGE);
        Configuration conf = new Configuration();
        ModelSource.Loaded m = ModelSource.load(a.get("model", null), a.get("config", null), a.get("checkpoint", null), conf);
        BpeTokenizer tok = ModelSource.tokenizer(a.get("tokenizer", null), a.get("model", null), conf);
        List<String> prompts = new ArrayList<>();
        if (a.get("prompt", null) != null) {
            prompts.add(a.get("prompt", null));
        }
        if (a.get("prompts", null) != null) {
            for (String line : Files.readAllLines(Paths.get(a.get("prompts", null)), StandardCharsets.UTF_8)) {
                if (!line.isBlank()) {
                    prompts.add(line);
                }
            }
        }
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("--prompt TEXT or --prompts FILE is required\nusage: " + USAGE);
        }
        ExitPolicy exit = ExitPolicy.parse(a.get("exit", "all"));
        KvCache.Mode cache = KvCache.Mode.parse(a.get("cache", "full"));
        TokenSampler sampler = new TokenSampler(Double.parseDouble(a.get("temperature", "0")),
                Integer.parseInt(a.get("top-k", "0")), Double.parseDouble(a.get("top-p", "1")),
                Long.parseLong(a.get("seed", "1")));
        int maxNew = Integer.parseInt(a.get("max-new", "64"));
        String device = a.get("device", "java");
        System.out.println("model " + m.origin() + " (" + m.config() + "); exit " + exit + ", cache "
                + cache.name().toLowerCase(Locale.ROOT) + ", device " + device);
        List<int[]> inputs = new ArrayList<>();
        int longest = 0;
        for (String p : prompts) {
            int[] ids = tok.encode(p);
            int[] in = new int[ids.length + 1];
            in[0] = tok.eosId();
            System.arraycopy(ids, 0, in, 1, ids.length);
            inputs.add(in);
            longest = Math.max(longest, in.length);
        }
        String json = a.get("json", null);
        try (DecodeOps ops = Backends.decoder(device, m.config(), m.params(), cache, longest, maxNew);
             Writer lines = json == null ? Writer.nullWriter() : Files.newBufferedWriter(Paths.get(json), StandardCharsets.UTF_8)) {
            generate(new Generator(ops), prompts, inputs, tok, maxNew, exit, cache, sampler, m.config().steps(), lines);
        }
    }

    private static void generate(Generator g, List<String> prompts, List<int[]> inputs, BpeTokenizer tok, int maxNew,
                                 ExitPolicy exit, KvCache.Mode cache, TokenSampler sampler, int steps, Writer json)
            throws IOException {
        for (int i = 0; i < prompts.size(); i++) {
            String p = prompts.get(i);
            Generator.Result r = g.generate(inputs.get(i), maxNew, tok.eosId(), exit, cache, sampler);
            int[] text = r.stoppedAtEos() ? Arrays.copyOf(r.tokens(), r.tokens().length - 1) : r.tokens();
            String decoded = tok.decode(text);
            System.out.println(p + decoded);
            System.out.printf(Locale.ROOT, "  [%d tokens, %.1f tokens/s, mean exit step %.2f of %d, exits per step %s,"
                            + " KV cache %,d bytes%s]%n", r.tokens().length, r.tokensPerSecond(), r.meanExitStep(),
                    steps, Arrays.toString(r.exitCounts()), r.cacheBytes(), r.stoppedAtEos() ? ", EOS" : "");
            json.write(JSON.writeValueAsString(line(p, inputs.get(i), r, decoded)));
            json.write('\n');
        }
    }

    /**
     * One prompt's JSON line: {@code prompt}, {@code prompt_ids} (as fed: the EOS first), {@code ids} (generated, the
     * EOS included when it stopped there), {@code text} (the decoded ids before any EOS), {@code exit_steps} (1-based)
     * and {@code logprobs} per generated id, {@code stopped_at_eos}.
     */
    static ObjectNode line(String prompt, int[] promptIds, Generator.Result r, String text) {
        ObjectNode n = JSON.createObjectNode();
        n.put("prompt", prompt);
        ArrayNode pi = n.putArray("prompt_ids");
        for (int id : promptIds) {
            pi.add(id);
        }
        ArrayNode ids = n.putArray("ids"), exits = n.putArray("exit_steps"), lp = n.putArray("logprobs");
        for (int k = 0; k < r.tokens().length; k++) {
            ids.add(r.tokens()[k]);
            exits.add(r.exitSteps()[k] + 1);
            lp.add(r.logProbs()[k]);
        }
        n.put("text", text);
        n.put("stopped_at_eos", r.stoppedAtEos());
        return n;
    }
}
