package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.worker.backend.MemoryPlan;
import io.ouro.worker.opencl.OpenClOps;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The Spark settings a training run needs on a GPU cluster, derived from the plan the workers use
 * ({@link Plan#memoryPlans}): what {@code ouro plan --config F --spark-conf} prints as a {@code spark-defaults.conf}
 * fragment and {@code deploy/bin/ouro-submit} passes to {@code spark-submit}.
 */
public final class SparkSettings {

    /** One setting and where its value comes from. */
    public record Setting(String key, String value, String why) {
    }

    static final long GIB = 1L << 30;

    /**
     * CPUs per executor (and per task). One worker's host side runs 16 shard-read threads (I/O-bound), a sender and
     * a receiver per ring connection, the host sums and copies on {@code Runtime.availableProcessors()} threads, and
     * G1's collector threads; with fewer than 2 CPUs the JVM would also pick the Serial collector by default. 8 per
     * GPU is 64 of the 100-odd cores of an 8-GPU node.
     */
    public static final int CORES = 8;

    /**
     * Arrays the OpenCL backend binds, placeholders included: four per parameter segment, the activation windows,
     * 16 stash slots, metrics, exchange, token and target ids and the two RoPE tables. G1 keeps each in whole regions
     * (32 MiB at these heaps), so each wastes up to one region beyond what the plan counts.
     */
    static final int ARRAYS = 4 * OpenClOps.PARAM_SEGMENTS + OpenClOps.ACT_PIECES + 16 + 6;
    static final long G1_REGION = 32L << 20;

    private SparkSettings() {
    }

    /** The largest executor heap over the stages (bytes) and the stage that needs it. */
    record Largest(long heapBytes, String stage, boolean allFit) {
    }

    static Largest largest(TrainConfig cfg) {
        List<MemoryPlan> plans = Plan.memoryPlans(cfg);
        long heap = 0;
        String stage = null;
        boolean fit = true;
        for (int i = 0; i < plans.size(); i++) {
            MemoryPlan p = plans.get(i);
            fit &= p.fits(cfg.train().deviceBytes());
            if (p.heapBytes() > heap) {
                heap = p.heapBytes();
                stage = cfg.stages().get(i).name();
            }
        }
        // a backend move holds the larger backend's host copies plus the state carried across (Plan.moves)
        for (Plan.Move m : Plan.moves(cfg)) {
            fit &= m.fits(cfg.train().deviceBytes());
            if (m.heapBytes() > heap) {
                heap = m.heapBytes();
                stage = m.from().name() + " -> " + m.to().name() + " (the move at step " + m.step() + ")";
            }
        }
        return new Largest(heap, stage, fit);
    }

    /**
     * {@code spark.executor.memory} in GiB for a plan heap of {@code heap} bytes: the heap, one G1 region per bound
     * array (humongous arrays occupy whole regions), 10% free for G1 to collect the short-lived objects of the data
     * path without full collections, and 2 GiB for Spark (its reserved 300 MiB, task and RPC objects) and the data
     * path's windows and the ring's on-heap copies, rounded up to GiB.
     */
    public static long executorMemoryGib(long heap) {
        double bytes = (heap + (double) ARRAYS * G1_REGION) * 1.10 + 2.0 * GIB;
        return (long) Math.ceil(bytes / GIB);
    }

    /**
     * {@code spark.executor.memoryOverhead} in GiB for an executor heap of {@code memoryGib}: native memory outside
     * the heap. 4 GiB for the OpenCL (CUDA) context, the driver's pinned staging buffers and its kernel compiler,
     * metaspace, the code cache and thread stacks, and the direct buffers of Netty, Arrow's shard reads and the ring;
     * plus 6% of the heap for G1's own structures (remembered sets, card table, marking bitmaps). The device buffers
     * themselves are on the GPU (the driver copies the Java arrays there), not in this memory.
     */
    public static long overheadGib(long memoryGib) {
        return (long) Math.ceil(4 + 0.06 * memoryGib);
    }

    /** The settings of {@code cfg} at its {@code train.workers}. */
    public static List<Setting> of(TrainConfig cfg) {
        int w = cfg.train().workers();
        Largest big = largest(cfg);
        long mem = executorMemoryGib(big.heapBytes());
        long over = overheadGib(mem);
        String heap = String.format(Locale.ROOT, "%.1f GiB", big.heapBytes() / (double) GIB);
        List<Setting> out = new ArrayList<>();
        int spares = cfg.train().recovery().spareExecutors();
        out.add(new Setting("spark.executor.instances", Integer.toString(w + spares),
                "W = train.workers" + " (or --workers): one executor per GPU, one barrier task per executor"
                        + (spares == 0 ? "; no spares (train.spare_executors 0): after a lost node the re-run waits"
                        + " until the cluster manager gives W executors again"
                        : ", + " + spares + " spare(s) (train.spare_executors): a re-run after a lost node or an"
                        + " excluded executor finds W slots among the executors already registered")));
        out.add(new Setting("spark.executor.cores", Integer.toString(CORES), "host threads of one worker: 16 shard reads,"
                + " the ring's senders and receivers, host sums on every CPU, G1's threads (under 2 CPUs the JVM picks"
                + " Serial); " + CORES + " x 8 GPUs = " + CORES * 8 + " cores a node"));
        out.add(new Setting("spark.task.cpus", Integer.toString(CORES),
                "= spark.executor.cores: one task per executor, so each task gets its executor's one GPU"));
        out.add(new Setting("spark.executor.memory", mem + "g", "the plan's largest executor heap, " + heap
                + " (stage " + big.stage() + "), + one G1 region per device array, + 10% for G1, + 2 GiB for Spark and"
                + " the data path, rounded up"));
        out.add(new Setting("spark.executor.memoryOverhead", over + "g", "native memory: 4 GiB for the OpenCL context,"
                + " pinned staging, kernel compiler, metaspace, stacks, Netty/Arrow/ring direct buffers, + 6% of the heap for"
                + " G1's remembered sets and bitmaps (device buffers live on the GPU)"));
        out.add(new Setting("spark.executor.resource.gpu.amount", "1", "one GPU per executor"));
        out.add(new Setting("spark.task.resource.gpu.amount", "1", "one GPU per task: its device is gpu:<address>"));
        out.add(new Setting("spark.dynamicAllocation.enabled", "false",
                "segments are barrier stages, which Spark refuses under dynamic allocation (so does PretrainApp)"));
        out.add(new Setting("spark.executor.extraJavaOptions", "-XX:+UseG1GC --add-modules=jdk.incubator.vector",
                "G1 never moves the humongous arrays the OpenCL driver holds (the worker refuses other collectors);"
                        + " the Vector API for the Java backend's matmuls (Spark 4 adds it too)"));
        out.add(new Setting("spark.locality.wait", "0s",
                "no data locality to wait for: each rank reads its own shard ranges; start all W tasks at once"));
        out.add(new Setting("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "10",
                "a barrier stage needs all W slots at once: re-check up to 10 times while executors register"));
        out.add(new Setting("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "15s",
                "between those checks (then fail the job instead of waiting forever)"));
        out.add(new Setting("spark.excludeOnFailure.enabled", "true", "an executor on which a rank failed is not"
                + " given that rank again (Spark's exclude-on-failure), so a segment's re-run avoids a bad GPU or host"));
        out.add(new Setting("spark.excludeOnFailure.task.maxTaskAttemptsPerExecutor", "1",
                "a rank is not retried on the executor it failed on"));
        out.add(new Setting("spark.excludeOnFailure.stage.maxFailedTasksPerExecutor", "1", "one failed rank excludes"
                + " its executor from the segment's stage: a barrier stage fails as a whole, so a second failure there"
                + " would be a second failed segment"));
        out.add(new Setting("spark.excludeOnFailure.application.maxFailedTasksPerExecutor", "2",
                "an executor whose ranks failed twice is excluded from the run for spark.excludeOnFailure.timeout"));
        out.add(new Setting("spark.excludeOnFailure.killExcludedExecutors", "true", "an excluded executor is killed,"
                + " freeing its GPU; with dynamic allocation off the cluster manager starts a replacement"));
        out.add(new Setting("spark.task.reaper.enabled", "true", "the tasks of a segment the driver gives up"
                + " (watchdog, failed rank) are cancelled with an interrupt; the reaper watches them"));
        out.add(new Setting("spark.task.reaper.killTimeout", "120s", "a cancelled rank still running after 2 minutes"
                + " (stuck in the device driver, deaf to the interrupt) takes its executor JVM down, so its slot and"
                + " GPU come back instead of holding the re-run's barrier stage"));
        return out;
    }

    /** The settings as {@code spark-defaults.conf} lines: a header, then a comment line and a key-value line each. */
    public static List<String> fragment(TrainConfig cfg) {
        Largest big = largest(cfg);
        List<String> out = new ArrayList<>();
        out.add("# Spark settings for " + cfg.file() + " at " + cfg.train().workers() + " workers (ouro plan --spark-conf,"
                + " from the plan each worker uses at train.device_memory_gib " + Plan.num(cfg.train().deviceMemoryGib())
                + (cfg.train().shardOptimizer() ? ", ZeRO-1 moments over " + cfg.train().workers() + " ranks" : "") + ")");
        if (!big.allFit()) {
            out.add("# WARNING: a stage does not fit train.device_memory_gib (see ouro plan): the run would fail there");
        }
        for (Setting s : of(cfg)) {
            out.add("# " + s.key() + ": " + s.why());
            out.add(String.format(Locale.ROOT, "%-60s %s", s.key(), s.value()));
        }
        return out;
    }
}
