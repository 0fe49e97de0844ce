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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Step metrics reach the driver while the segment runs: with both ranks held after step {@link #HOLD} (by
 * {@link SegmentTask#stepHook}), before the driver has the segment's result, the driver log and the run's
 * metrics file hold exactly the steps up to it, the Spark UI's metrics endpoint shows that step and its loss,
 * and the REST API lists the segment's job as running.
 */
class LiveProgressTest {

    static final int STEPS = 100;
    /** The step after which both ranks wait until the test has looked. */
    static final long HOLD = 10;

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

    /** Lines in the metrics file, 0 until it exists. */
    static int metricsLines(Path dir) throws IOException {
        Path f = metricsFile(dir);
        return f == null ? 0 : Files.readAllLines(f).size();
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

        // every rank parks after step HOLD (rank 0 has sent it), so no rank waits on the ring meanwhile
        CountDownLatch held = new CountDownLatch(cfg.train().workers());
        CountDownLatch release = new CountDownLatch(1);
        SegmentTask.stepHook = (rank, step) -> {
            if (step == HOLD) {
                held.countDown();
                try {
                    // bounded, longer than the test looks (whileHeld, 90 s); the test releases in any case
                    release.await(150, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        Path metricsDir = tmp.resolve("metrics");
        String seen;
        try {
            driver.start();
            long reach = System.nanoTime() + Duration.ofSeconds(180).toNanos();
            boolean reached;
            do {
                reached = held.await(200, TimeUnit.MILLISECONDS);
            } while (!reached && driver.isAlive() && System.nanoTime() < reach);
            assertNull(failed.get(), () -> "the run failed: " + failed.get());
            assertTrue(reached, "both ranks reached step " + HOLD);
            seen = whileHeld(port, log, metricsDir, segmentEnded);
        } finally {
            release.countDown();
            driver.join(Duration.ofSeconds(120).toMillis());
            SegmentTask.stepHook = null;
        }
        assertNull(failed.get(), () -> "the run failed: " + failed.get());
        assertFalse(driver.isAlive(), "the run ended once released");
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

    /**
     * With the ranks held after step {@link #HOLD}: waits (bounded) until the driver has taken that step's line
     * and the UI answers, then asserts what each shows. Nothing here races training, which cannot move on.
     */
    private static String whileHeld(int port, List<String> log, Path metricsDir, AtomicBoolean segmentEnded)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        // the driver logs a step, shows it on the gauges, then appends it to the metrics file
        while (metricsLines(metricsDir) < HOLD + 1 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        List<String> fileLines = Files.readAllLines(metricsFile(metricsDir));
        long logSteps = new ArrayList<>(log).stream().filter(l -> l.startsWith("stage main step ")).count();
        assertEquals(HOLD + 1, fileLines.size(), "the metrics file holds the steps up to the held one");
        assertEquals(HOLD + 1, logSteps, "the driver logged the steps up to the held one");
        StepMetrics last = StepMetrics.parse(fileLines.get((int) HOLD), new HashMap<>());
        assertEquals(HOLD, last.step());

        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
        String ui = "http://127.0.0.1:" + port;
        Pattern stepGauge = Pattern.compile("ProgressPlugin\\.step\"\\s*:\\s*\\{\\s*\"value\"\\s*:\\s*(\\d+)");
        Pattern lossGauge = Pattern.compile("ProgressPlugin\\.loss\"\\s*:\\s*\\{\\s*\"value\"\\s*:\\s*([-0-9.eE]+)");
        Pattern hiddenGauge = Pattern.compile("ProgressPlugin\\.exchange_hidden\"\\s*:\\s*\\{\\s*\"value\"\\s*:\\s*([-0-9.eE]+)");
        Pattern runningJob = Pattern.compile("\"description\"\\s*:\\s*\"stage main · steps 0–" + (STEPS - 1)
                + "[^\"]*\"[^}]*\"status\"\\s*:\\s*\"RUNNING\"");
        String gauges = "", jobs = "";
        while (System.nanoTime() < deadline) {
            gauges = get(http, ui + "/metrics/json/");
            Matcher id = Pattern.compile("\"id\"\\s*:\\s*\"([^\"]+)\"").matcher(get(http, ui + "/api/v1/applications"));
            jobs = id.find() ? get(http, ui + "/api/v1/applications/" + id.group(1) + "/jobs") : "";
            if (stepGauge.matcher(gauges).find() && lossGauge.matcher(gauges).find()
                    && hiddenGauge.matcher(gauges).find() && runningJob.matcher(jobs).find()) {
                break;
            }
            Thread.sleep(100);
        }
        Matcher step = stepGauge.matcher(gauges), loss = lossGauge.matcher(gauges), hidden = hiddenGauge.matcher(gauges);
        assertTrue(step.find() && loss.find() && hidden.find(), "the UI serves the gauges: " + gauges);
        assertTrue(runningJob.matcher(jobs).find(), "the REST API lists the segment's job as running: " + jobs);
        // all of this before the driver has the segment's result
        assertFalse(segmentEnded.get(), "the segment has not ended");
        String seen = String.format("while segment 0–%d was held after step %d: %d step lines logged, %d in the"
                + " metrics file, UI gauges step %s loss %s exchange hidden %s, REST API: the segment's job RUNNING",
                STEPS - 1, HOLD, logSteps, fileLines.size(), step.group(1), loss.group(1), hidden.group(1));
        double h = Double.parseDouble(hidden.group(1));
        assertTrue(h >= 0 && h <= 1, seen);
        long gaugeStep = Long.parseLong(step.group(1));
        assertTrue(gaugeStep >= 1 && gaugeStep < STEPS - 1, seen);
        assertEquals(HOLD, gaugeStep, seen);
        assertTrue(logSteps >= 2, seen);
        // both sides print the double in full (Jackson), so the gauge's loss is the file's to the last bit
        assertEquals(last.loss(), Double.parseDouble(loss.group(1)), 0.0, "the loss gauge shows the held step's loss: " + seen);
        return seen;
    }
}
