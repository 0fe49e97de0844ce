package io.ouro.orchestrator;

import io.ouro.orchestrator.config.ConfigException;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.train.Plan;
import io.ouro.orchestrator.train.SparkSettings;
import io.ouro.worker.backend.MemoryPlan;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Launch settings come from the plan: {@code ouro plan --spark-conf} for the shipped recipes at 64 and 256 workers,
 * PretrainApp's refusal of dynamic allocation, and configs read through Hadoop's file systems.
 */
class LaunchSettingsTest {

    static final Path CONFIGS = Path.of("..", "pipeline-configs").toAbsolutePath().normalize();

    @TempDir
    Path tmp;

    /** The fragment's key-value lines, in order; every one follows a comment line that says where it comes from. */
    static Map<String, String> settings(List<String> fragment) {
        Map<String, String> out = new LinkedHashMap<>();
        for (int i = 0; i < fragment.size(); i++) {
            String line = fragment.get(i);
            if (line.startsWith("#")) {
                continue;
            }
            String[] kv = line.trim().split("\\s+", 2);
            assertEquals(2, kv.length, line);
            assertTrue(fragment.get(i - 1).startsWith("# " + kv[0] + ": "), "a comment says why: " + kv[0]);
            assertNull(out.put(kv[0], kv[1]), "set once: " + kv[0]);
        }
        return out;
    }

    static long gib(String v) {
        assertTrue(v.matches("[0-9]+g"), v);
        return Long.parseLong(v.substring(0, v.length() - 1)) << 30;
    }

    @Test
    void theShippedRecipesGetSettingsThatHoldTheirPlanAt64And256Workers() throws Exception {
        for (String recipe : List.of("ouro-1.4b.yaml", "ouro-2.6b.yaml")) {
            Path file = CONFIGS.resolve(recipe);
            String yaml = Files.readString(file);
            long heap64 = 0;
            for (int w : new int[] {64, 256}) {
                TrainConfig cfg = TrainConfig.parseWithWorkers(file.toString(), yaml, w);
                assertEquals(w, cfg.train().workers());
                long heap = 0;
                for (MemoryPlan p : Plan.memoryPlans(cfg)) {
                    assertTrue(p.fits(cfg.train().deviceBytes()), recipe + " fits at " + w);
                    heap = Math.max(heap, p.heapBytes());
                }
                Map<String, String> s = settings(SparkSettings.fragment(cfg));
                String at = recipe + " at " + w + ": " + s;
                assertEquals(Integer.toString(w), s.get("spark.executor.instances"), at);
                assertTrue(gib(s.get("spark.executor.memory")) >= heap, at);
                assertTrue(gib(s.get("spark.executor.memoryOverhead")) >= 4L << 30, at);
                assertEquals("false", s.get("spark.dynamicAllocation.enabled"), at);
                assertTrue(s.get("spark.executor.extraJavaOptions").contains("-XX:+UseG1GC"), at);
                int cores = Integer.parseInt(s.get("spark.executor.cores"));
                assertTrue(cores > 1, at);
                assertEquals(Integer.toString(cores), s.get("spark.task.cpus"), "one task per executor: " + at);
                assertEquals("1", s.get("spark.executor.resource.gpu.amount"), at);
                assertEquals("1", s.get("spark.task.resource.gpu.amount"), at);
                assertEquals("0s", s.get("spark.locality.wait"), at);
                assertTrue(s.containsKey("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures"), at);
                assertEquals("true", s.get("spark.excludeOnFailure.enabled"), at);
                assertEquals("1", s.get("spark.excludeOnFailure.stage.maxFailedTasksPerExecutor"), at);
                assertEquals("true", s.get("spark.excludeOnFailure.killExcludedExecutors"), at);
                assertEquals("true", s.get("spark.task.reaper.enabled"), at);
                assertEquals("120s", s.get("spark.task.reaper.killTimeout"), at);
                if (w == 64) {
                    heap64 = heap;
                    assertEquals(heap, heapAtOwnWorkers(file), "the recipe's own train.workers is 64");
                } else {
                    // shard_optimizer: each rank keeps the moments of 1/W of the parameters, so more workers need less
                    assertTrue(cfg.train().shardOptimizer() && heap < heap64, recipe + ": " + heap + " < " + heap64);
                }
            }
        }
    }

    @Test
    void spareExecutorsAreRequestedBeyondTheWorkers() throws Exception {
        Path file = CONFIGS.resolve("ouro-1.4b.yaml");
        String yaml = Files.readString(file);
        TrainConfig none = TrainConfig.parseWithWorkers(file.toString(), yaml, 64);
        assertEquals(0, none.train().recovery().spareExecutors(), "no spares unless asked for");
        TrainConfig two = TrainConfig.parseWithWorkers(file.toString(), yaml.replaceFirst("(?m)^train:\\s*$",
                "train:\n  spare_executors: 2"), 64);
        assertEquals(2, two.train().recovery().spareExecutors());
        Map<String, String> s = settings(SparkSettings.fragment(two));
        assertEquals("66", s.get("spark.executor.instances"), "W + spares: " + s);
        assertEquals("64", settings(SparkSettings.fragment(none)).get("spark.executor.instances"));
    }

    static long heapAtOwnWorkers(Path file) {
        return Plan.memoryPlans(TrainConfig.load(file)).stream().mapToLong(MemoryPlan::heapBytes).max().orElseThrow();
    }

    @Test
    void anotherWorkerCountRecomputesStepsFromTokens() {
        String yaml = """
                run: {name: t}
                data: {synthetic: {tokens: 1000}}
                train: {workers: 2, shard_optimizer: true}
                stages:
                  - {name: a, tokens: 4096, seq_len: 8, batch_per_worker: 4}
                """;
        assertEquals(64, TrainConfig.parse("t.yaml", yaml).stages().get(0).steps());
        TrainConfig at8 = TrainConfig.parseWithWorkers("t.yaml", yaml, 8);
        assertEquals(8, at8.train().workers());
        assertEquals(16, at8.stages().get(0).steps());
        assertEquals(1, TrainConfig.parseWithWorkers("t.yaml", "run: {name: t}\ndata: {synthetic: {tokens: 1000}}\n"
                + "train: {seq_len: 8, batch_per_worker: 1, steps: 2}\n", 1).train().workers(), "a file without stages");
    }

    @Test
    void pretrainAppRefusesDynamicAllocation() {
        SparkConf conf = new SparkConf(false).setMaster("yarn");
        assertNull(PretrainApp.refusal(conf));
        assertNull(PretrainApp.refusal(conf.clone().set("spark.dynamicAllocation.enabled", "false")));
        String msg = PretrainApp.refusal(conf.clone().set("spark.dynamicAllocation.enabled", "true"));
        assertNotNull(msg);
        assertTrue(msg.startsWith("spark.dynamicAllocation.enabled is true"), msg);
        assertTrue(msg.contains("spark.dynamicAllocation.enabled=false"), msg);
        assertTrue(msg.contains("barrier"), msg);
    }

    @Test
    void pretrainAppPassesSparkHadoopSettingsToTheConfigRead() {
        Configuration h = PretrainApp.hadoopConf(new SparkConf(false).set("spark.hadoop.fs.defaultFS", "file:///x")
                .set("spark.executor.cores", "8"));
        assertEquals("file:///x", h.get("fs.defaultFS"));
    }

    @Test
    void configsLoadThroughHadoopFileSystems() throws Exception {
        String yaml = Files.readString(CONFIGS.resolve("ouro-1.4b.yaml"));
        Path local = tmp.resolve("run.yaml");
        Files.writeString(local, yaml);
        TrainConfig expected = TrainConfig.parse(local.toString(), yaml);

        String uri = local.toUri().toString();
        assertTrue(uri.startsWith("file:/"), uri);
        TrainConfig byUri = TrainConfig.load(uri);
        assertEquals(expected.hash(), byUri.hash());
        assertEquals(uri, byUri.file(), "messages name the file as given");
        assertEquals(expected.hash(), TrainConfig.load(local.toString()).hash(), "a plain path");
        assertEquals(expected.hash(), TrainConfig.load(local).hash());

        // written and read through Hadoop's local file system, as the tokenizer's shards are
        Configuration conf = new Configuration();
        FileSystem fs = FileSystem.getLocal(conf);
        org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(tmp.resolve("hadoop").toUri().toString(), "run.yaml");
        try (var out = fs.create(p)) {
            out.write(yaml.getBytes(StandardCharsets.UTF_8));
        }
        assertEquals(expected.hash(), TrainConfig.load(fs.makeQualified(p).toString(), conf).hash());
        assertEquals(64, PlanApp.load(fs.makeQualified(p).toString(), 0).train().workers());
        assertEquals(256, PlanApp.load(fs.makeQualified(p).toString(), 256).train().workers());

        String missing = assertThrows(ConfigException.class, () -> TrainConfig.load(uri + ".nope")).getMessage();
        assertTrue(missing.startsWith(uri + ".nope: cannot read: "), missing);
        String scheme = assertThrows(ConfigException.class, () -> TrainConfig.load("nofs://h/run.yaml")).getMessage();
        assertTrue(scheme.startsWith("nofs://h/run.yaml: cannot read: "), scheme);
    }
}
