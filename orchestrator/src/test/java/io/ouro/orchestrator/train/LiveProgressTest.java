package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Step metrics reach the driver while the segment runs: before the driver has the segment's result, the
 * driver log and the run's metrics file hold some (not all) of its steps, the Spark UI's metrics endpoint
 * shows the current step and loss of that segment, and the REST API lists the segment's job as running.
 */
class LiveProgressTest {

    static final int STEPS = 100;

    @TempDir
    Path tmp;

    /** The body, or "" when the UI does not answer in time (its first REST call starts Jersey, slow on a busy machine). */
    static String get(HttpClient http, String url) throws IOException, InterruptedException {
        try {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30))
                    .build(), HttpResponse.BodyHandlers.ofString());
            return r.statusCode() == 200 ? r.body() : "";
        } catch (java.net.http.HttpTimeoutException e) {
            return "";
        }
    }

    /** The driver's metrics file, null until it exists. */
    static Path metricsFile(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return null;
        }
        try (var files = Files.list(dir)) {
            List<Path> all = files.filter(p -> p.toString().endsWith(".jsonl")).toList();
            assertTrue(all.size() <= 1, "one file per driver: " + all);
            return all.isEmpty() ? null : all.get(0);
        }
    }

    @Test
    @Timeout(300)
    void stepsOfARunningSegmentReachTheLogTheMetricsFileAndTheUi() throws Exception {
        TrainConfig cfg = TrainConfig.parse("live.yaml", """
                run: {name: live-test, seed: 3, out: "%s"}
                model: {preset: small, vocab: 512, hidden: 64, layers: 2, heads: 4, ffn: 176, recurrent_steps: 4}
                data: {synthetic: {tokens: 50000}}
                train: {workers: 2, device: java, batch_per_worker: 4, seq_len: 64, steps: %d, segment_steps: %d,
                        lr: 0.001, timeout_s: 60}
                """.formatted(tmp.toUri(), STEPS, STEPS));
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        var conf = LocalSpark.conf(cfg).set("spark.ui.enabled", "true").set("spark.ui.port", Integer.toString(port));
        List<String> log = java.util.Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean segmentEnded = new AtomicBoolean();
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread driver = new Thread(() -> {
            try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
                new Trainer(jsc, cfg, l -> {
                    System.out.println(l);
                    if (l.startsWith("segment 0–")) {
                        segmentEnded.set(true);
                    }
                    log.add(l);
                }).run(false);
            } catch (Throwable e) {
                failed.set(e);
            }
        }, "live-test driver");
        driver.start();

        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
        String ui = "http://127.0.0.1:" + port;
        Path metricsDir = tmp.resolve("metrics");
        Pattern stepGauge = Pattern.compile("ProgressPlugin\\.step\"\\s*:\\s*\\{\\s*\"value\"\\s*:\\s*(\\d+)");
        Pattern lossGauge = Pattern.compile("ProgressPlugin\\.loss\"\\s*:\\s*\\{\\s*\"value\"\\s*:\\s*([-0-9.eE]+)");
        Pattern hiddenGauge = Pattern.compile("ProgressPlugin\\.exchange_hidden\"\\s*:\\s*\\{\\s*\"value\"\\s*:\\s*([-0-9.eE]+)");
        String seen = null;
        long deadline = System.nanoTime() + Duration.ofSeconds(240).toNanos();
        while (seen == null && driver.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(50);
            Path metrics = metricsFile(metricsDir);
            long fileSteps = metrics == null ? 0 : Files.readAllLines(metrics).size();
            long logSteps = new ArrayList<>(log).stream().filter(l -> l.startsWith("stage main step ")).count();
            if (fileSteps < 2 || fileSteps >= STEPS - 1) {
                continue;
            }
            String gauges = get(http, ui + "/metrics/json/");
            Matcher step = stepGauge.matcher(gauges), loss = lossGauge.matcher(gauges), hidden = hiddenGauge.matcher(gauges);
            String apps = get(http, ui + "/api/v1/applications");
            Matcher id = Pattern.compile("\"id\"\\s*:\\s*\"([^\"]+)\"").matcher(apps);
            String jobs = id.find() ? get(http, ui + "/api/v1/applications/" + id.group(1) + "/jobs") : "";
            boolean running = Pattern.compile("\"description\"\\s*:\\s*\"stage main · steps 0–" + (STEPS - 1)
                    + "[^\"]*\"[^}]*\"status\"\\s*:\\s*\"RUNNING\"").matcher(jobs).find();
            // all of this before the driver has the segment's result
            if (!segmentEnded.get() && step.find() && loss.find() && hidden.find() && running) {
                seen = String.format("while segment 0–%d ran: %d step lines logged, %d in the metrics file, UI gauges step %s"
                        + " loss %s exchange hidden %s, REST API: the segment's job RUNNING", STEPS - 1, logSteps,
                        fileSteps, step.group(1), loss.group(1), hidden.group(1));
                double h = Double.parseDouble(hidden.group(1));
                assertTrue(h >= 0 && h <= 1, seen);
                long gaugeStep = Long.parseLong(step.group(1));
                assertTrue(gaugeStep >= 1 && gaugeStep < STEPS - 1, seen);
                assertTrue(logSteps >= 2, seen);
            }
        }
        driver.join(Duration.ofSeconds(120).toMillis());
        assertNull(failed.get(), () -> "the run failed: " + failed.get());
        assertNotNull(seen, "steps of the running segment were seen live");
        System.out.println("live progress: " + seen);

        List<String> lines = Files.readAllLines(metricsFile(metricsDir));
        assertEquals(STEPS, lines.size(), "one JSON line per step");
        for (int s = 0; s < STEPS; s++) {
            Map<String, String> f = new HashMap<>();
            StepMetrics m = StepMetrics.parse(lines.get(s), f);
            assertEquals(s, m.step());
            assertEquals("main", f.get("stage"));
            assertTrue(Double.isFinite(m.loss()) && m.stepCe().length == 4 && m.tokens() > 0, lines.get(s));
            // two ranks exchange gradients: how long it took and how much of it the backward hid
            assertTrue(m.exchangeMs() > 0 && m.hidden() >= 0 && m.hidden() <= 1, lines.get(s));
        }
    }
}
