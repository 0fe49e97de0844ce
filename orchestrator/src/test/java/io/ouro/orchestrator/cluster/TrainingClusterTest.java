package io.ouro.orchestrator.cluster;

import io.ouro.tokenizer.job.TokenizeJob;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * End to end on a real cluster: a Spark standalone Master and two Workers in their own JVMs on 127.0.0.1,
 * two corpora tokenized into two sources' shards on an in-process HDFS and mixed 60/40 (the config hash
 * written by the executors must match the driver's), the pretraining driver submitted through
 * SparkSubmit with the thin application jar. Training runs across the two executor JVMs, the REST API lists
 * the segment jobs with their descriptions, and a second run whose executor JVM is killed mid-run ends
 * with checkpoint weights bit-identical to the first.
 */
class TrainingClusterTest {

    @Test
    @Timeout(600)
    void trainsAcrossTwoExecutorsAndSurvivesAKilledExecutor() throws Exception {
        java.nio.file.Path work = java.nio.file.Path.of("target", "cluster-test-" + System.nanoTime()).toAbsolutePath();
        java.nio.file.Path data = java.nio.file.Path.of("..", "..", "shared", "data").toAbsolutePath().normalize();
        String appJar = System.getProperty("ouro.app.jar");
        assertTrue(appJar != null && Files.exists(java.nio.file.Path.of(appJar)), "the app jar is built: " + appJar);

        Configuration conf = new Configuration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, work.resolve("dfs").toString());
        for (String k : new String[] {"dfs.datanode.address", "dfs.datanode.http.address", "dfs.datanode.ipc.address",
                "dfs.namenode.http-address", "dfs.namenode.secondary.http-address"}) {
            conf.set(k, "127.0.0.1:0");
        }
        MiniDFSCluster dfs = new MiniDFSCluster.Builder(conf, work.resolve("dfs").toFile()).numDataNodes(1).build();
        try (StandaloneCluster cluster = new StandaloneCluster(work, 2, 1)) {
            dfs.waitActive();
            FileSystem fs = dfs.getFileSystem();
            String hdfs = "hdfs://127.0.0.1:" + dfs.getNameNodePort();
            // two sources, mixed 60/40: the run identity (config hash) of a multi-source mixture must be the same
            // in the driver's JVM and in each executor's, where shards are written and checkpoints loaded
            for (String lang : new String[] {"en", "de"}) {
                try (FSDataOutputStream o = fs.create(new Path(hdfs + "/corpus-" + lang + "/" + lang + ".txt"))) {
                    o.write(Files.readString(data.resolve("corpora/fortunes-" + lang + ".txt")).substring(0, 150_000)
                            .getBytes(StandardCharsets.UTF_8));
                }
            }
            SparkConf local = new SparkConf().setMaster("local[1]").setAppName("tokenize").set("spark.ui.enabled", "false")
                    .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1");
            try (JavaSparkContext jsc = new JavaSparkContext(local)) {
                for (String lang : new String[] {"en", "de"}) {
                    TokenizeJob.run(jsc, new TokenizeJob.Options(hdfs + "/corpus-" + lang, "text", "text", "%",
                            data.resolve("tokenizers/gpt2/tokenizer.json").toUri().toString(), hdfs + "/shards-" + lang,
                            lang, 10_000, 1 << 20, -1), System.out::println);
                }
            }

            // run 0: uninterrupted; run 1: an executor JVM killed mid-run; runs 2 and 3: the driver process killed
            // after the first checkpoint, then submitted again with --resume auto into the same output
            String[] outs = {hdfs + "/run-a", hdfs + "/run-b", hdfs + "/run-c", hdfs + "/run-c"};
            List<String> logs = new ArrayList<>();
            Set<String> descriptions = new HashSet<>();
            for (int run = 0; run < 4; run++) {
                java.nio.file.Path cfg = work.resolve("run-" + run + ".yaml");
                Files.writeString(cfg, """
                        run: {name: cluster-test, seed: 9, out: "%s"}
                        model: {preset: small, vocab: 50257, hidden: 16, layers: 1, heads: 2, ffn: 24, recurrent_steps: 2}
                        data:
                          sources:
                            - {name: en, manifest: "%s/shards-en/manifest.json"}
                            - {name: de, manifest: "%s/shards-de/manifest.json"}
                        train: {workers: 2, device: java, segment_steps: 20, checkpoint_every: 20, timeout_s: 120,
                                retry: {max_failures: 2, backoff_s: 1}}
                        stages:
                          - {name: main, steps: 40, seq_len: 16, batch_per_worker: 2, lr: {peak: 0.003},
                             mixture: {en: 0.6, de: 0.4}}
                        """.formatted(outs[run], hdfs, hdfs));
                int ui = StandaloneCluster.freePort();
                java.nio.file.Path log = work.resolve("driver-" + run + ".log");
                Process p = cluster.submit(log, List.of("--master", cluster.masterUrl(), "--deploy-mode", "client",
                        "--class", "io.ouro.orchestrator.PretrainApp",
                        "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
                        "--conf", "spark.ui.port=" + ui, "--conf", "spark.executor.memory=1g",
                        "--conf", "spark.cores.max=2", "--conf", "spark.executor.cores=1",
                        "--conf", "spark.executor.extraClassPath=" + StandaloneCluster.CP,
                        "--conf", "spark.executorEnv.SPARK_LOCAL_IP=127.0.0.1",
                        appJar, "--config", cfg.toString(), "--linger-ui-s", run == 0 ? "8" : "0",
                        "--resume", run == 3 ? "auto" : "no"));
                boolean killed = false;
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(300);
                while (p.isAlive() && System.nanoTime() < end) {
                    String text = Files.exists(log) ? Files.readString(log) : "";
                    if (run == 2 && !killed && text.contains("checkpoint of step 20 committed")) {
                        p.descendants().forEach(ProcessHandle::destroyForcibly);
                        p.destroyForcibly();
                        killed = true;
                        System.out.println("killed the driver process after the checkpoint of step 20");
                        break;
                    }
                    if (run == 1 && !killed && text.contains("checkpoint of step 20 committed")) {
                        // an executor of this run (the driver names each rank's executor pid): another application's
                        // executors (the first run's, lingering on a loaded machine) may still be alive
                        Matcher pid = Pattern.compile("rank 1: executor \\S+ pid (\\d+)").matcher(text);
                        assertTrue(pid.find(), "the driver named rank 1's executor: " + text);
                        ProcessHandle ex = ProcessHandle.of(Long.parseLong(pid.group(1))).orElseThrow(
                                () -> new AssertionError("rank 1's executor JVM " + pid.group(1) + " is running"));
                        assertTrue(cluster.ownExecutors().stream().anyMatch(e -> e.pid() == ex.pid()),
                                "pid " + ex.pid() + " is an executor JVM of this cluster");
                        ex.destroyForcibly();
                        killed = true;
                        System.out.println("killed executor JVM pid " + ex.pid() + " (rank 1's)");
                    }
                    if (text.contains("keeping the driver")) {
                        try {
                            String apps = StandaloneCluster.get("http://127.0.0.1:" + ui + "/api/v1/applications");
                            Matcher m = Pattern.compile("\"id\"\\s*:\\s*\"([^\"]+)\"").matcher(apps);
                            if (m.find()) {
                                String jobs = StandaloneCluster.get("http://127.0.0.1:" + ui + "/api/v1/applications/"
                                        + m.group(1) + "/jobs");
                                Matcher d = Pattern.compile("\"description\"\\s*:\\s*\"([^\"]+)\"").matcher(jobs);
                                while (d.find()) {
                                    descriptions.add(d.group(1));
                                }
                            }
                        } catch (java.io.IOException e) {
                            // the UI may be going down; the descriptions gathered so far stand
                        }
                    }
                    Thread.sleep(200);
                }
                assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the driver exits");
                String text = Files.readString(log);
                logs.add(text);
                if (run == 2) {
                    assertTrue(killed, "the driver was killed");
                    continue;
                }
                assertEquals(0, p.exitValue(), "driver log:\n" + StandaloneCluster.tail(log));
                if (run == 1) {
                    assertTrue(killed, "an executor was killed");
                }
            }
            // the driver's config hash is the one every executor wrote into its checkpoint shards
            for (int run : new int[] {0, 1, 3}) {
                Matcher h = Pattern.compile("config hash (\\w+)").matcher(logs.get(run));
                assertTrue(h.find(), logs.get(run));
                String meta;
                try (var in = fs.open(new Path(outs[run] + "/checkpoints/step-0000000040/checkpoint.json"))) {
                    meta = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                }
                assertTrue(meta.contains("\"config_hash\" : \"" + h.group(1) + "\""), "run " + run + ": " + meta);
            }
            // two executor JVMs took part in a segment
            Matcher seg = Pattern.compile("rank 0: executor (\\S+) pid (\\d+).*rank 1: executor (\\S+) pid (\\d+)")
                    .matcher(logs.get(0));
            assertTrue(seg.find(), logs.get(0));
            assertTrue(!seg.group(2).equals(seg.group(4)), "ranks ran in two JVMs: " + seg.group());
            // the REST API lists the segment jobs by their descriptions
            System.out.println("job descriptions from the REST API: " + descriptions);
            assertTrue(descriptions.stream().anyMatch(d -> d.startsWith("stage main · steps 0–19 · loss")), descriptions.toString());
            assertTrue(descriptions.stream().anyMatch(d -> d.startsWith("stage main · steps 20–39 · loss")), descriptions.toString());
            // the run with a killed executor re-ran from the checkpoint (or reloaded it) and ends bit-identical
            logs.get(1).lines().filter(l -> l.contains(" ouro segment") || l.contains("re-running"))
                    .forEach(l -> System.out.println("run with a killed executor: " + l.substring(0, Math.min(400, l.length()))));
            byte[] a = weights(outs[0], work, conf);
            byte[] b = weights(outs[1], work, conf);
            assertArrayEquals(a, b, "weights after a killed executor are bit-identical to the uninterrupted run");
            assertTrue(logs.get(1).contains("re-running from step 20") || logs.get(1).contains("state checkpoint"),
                    "the second run recovered from the checkpoint");
            // the driver killed after step 20's checkpoint, resubmitted with --resume auto: bit-identical too
            assertTrue(logs.get(3).contains("resume: continuing after the checkpoint of step 20"), logs.get(3));
            byte[] c = weights(outs[3], work, conf);
            assertArrayEquals(a, c, "weights after a killed and resumed driver are bit-identical to the uninterrupted run");
            System.out.println("cluster: weights bit-identical after a killed executor JVM and after a killed driver"
                    + " process resumed with --resume auto");
        } finally {
            dfs.shutdown();
        }
    }

    /** The weights of the run's step-40 checkpoint, exported as one safetensors file (ouro export). */
    static byte[] weights(String run, java.nio.file.Path work, Configuration conf) throws java.io.IOException {
        java.nio.file.Path file = work.resolve("export-" + System.nanoTime() + ".safetensors");
        System.out.println(io.ouro.orchestrator.ExportApp.export(run, 40, file.toUri().toString(), conf));
        return Files.readAllBytes(file);
    }
}
