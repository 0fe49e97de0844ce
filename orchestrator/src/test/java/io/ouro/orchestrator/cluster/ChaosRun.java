package io.ouro.orchestrator.cluster;

import org.apache.hadoop.conf.Configuration;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Training under injected faults on a Spark standalone cluster (W = 3 executor JVMs on 127.0.0.1), against a
 * fault-free run of the same config: the core of {@code tests/bench.sh chaos} and of {@link ChaosClusterTest}.
 * Executor JVMs and the driver are killed from here when the driver logs a given step (the driver is then submitted
 * again with {@code --resume auto}); task failures, hung ranks and failed checkpoint writes come from
 * {@code train.inject}, each fired once by the executors. The outcome says whether the run completed, whether its
 * final weights are bit-identical to the fault-free run's, and how many steps each failure cost.
 */
public final class ChaosRun {

    public enum Kind {
        EXECUTOR_KILLED, TASK_FAILURE, RANK_HANG, DRIVER_KILLED, CHECKPOINT_WRITE_FAILURE;

        /** The marker {@code train.inject} leaves under {@code <run.out>/inject/}; null for the kills done from here. */
        String marker() {
            return switch (this) {
                case TASK_FAILURE -> "task-failure";
                case RANK_HANG -> "hang";
                case CHECKPOINT_WRITE_FAILURE -> "checkpoint-write-failure";
                default -> null;
            };
        }
    }

    /**
     * A fault at {@code step}: a kill once the driver has logged that step; an injected task failure or hang at the
     * start of that step; a failed write of the checkpoint of that step.
     */
    public record Fault(Kind kind, long step) {
    }

    /** The full bench: 120 steps in 12 segments of 10 (a checkpoint after each), 12 faults of 5 kinds. */
    public static final long FULL_STEPS = 120;
    public static final List<Fault> FULL = List.of(
            new Fault(Kind.TASK_FAILURE, 7),
            new Fault(Kind.EXECUTOR_KILLED, 16),
            new Fault(Kind.CHECKPOINT_WRITE_FAILURE, 30),
            new Fault(Kind.RANK_HANG, 34),
            new Fault(Kind.DRIVER_KILLED, 47),
            new Fault(Kind.TASK_FAILURE, 55),
            new Fault(Kind.CHECKPOINT_WRITE_FAILURE, 70),
            new Fault(Kind.EXECUTOR_KILLED, 75),
            new Fault(Kind.RANK_HANG, 88),
            new Fault(Kind.DRIVER_KILLED, 96),
            new Fault(Kind.TASK_FAILURE, 104),
            new Fault(Kind.EXECUTOR_KILLED, 113));

    /**
     * One failure the driver recovered from: the step it went back to, the logged steps it ran again (from {@code from}
     * up to {@code upTo}, exclusive), and the planned fault it is put down to (the first not yet accounted for whose
     * step lies in {@code [from, upTo]}; null for a failure nobody planned).
     */
    public record Recovery(String cause, long from, long upTo, Fault fault) {

        public long lost() {
            return Math.max(0, upTo - from);
        }

        Recovery of(Fault f) {
            return new Recovery(cause, from, upTo, f);
        }
    }

    public record Outcome(List<Fault> fired, boolean completed, boolean identical, List<Recovery> recoveries,
                          double seconds, double referenceSeconds) {

        public int kinds() {
            return fired.stream().map(Fault::kind).collect(Collectors.toSet()).size();
        }

        public long lostSteps() {
            return recoveries.stream().mapToLong(Recovery::lost).sum();
        }

        public String resultLine() {
            return String.format(Locale.ROOT, "RESULT chaos faults=%d kinds=%d completed=%d identical=%d lost_steps=%d"
                            + " lost_per_fault=%.1f recoveries=%d seconds=%.0f reference_seconds=%.0f ratio=%.2f",
                    fired.size(), kinds(), completed ? 1 : 0, identical ? 1 : 0, lostSteps(),
                    fired.isEmpty() ? 0.0 : (double) lostSteps() / fired.size(), recoveries.size(), seconds,
                    referenceSeconds, seconds / referenceSeconds);
        }
    }

    private static final Pattern STEP = Pattern.compile("stage \\S+ step (\\d+) loss");
    private static final Pattern FAILED = Pattern.compile("segment \\d+–\\d+ failed \\(failure.*?\\): (.*)");
    private static final Pattern RERUN = Pattern.compile("re-running from step (\\d+)");
    private static final Pattern RESUMED = Pattern.compile("resume: continuing after the checkpoint of step (\\d+)"
            + "|resume: no valid checkpoint");

    private ChaosRun() {
    }

    /** The run's config: {@code steps} steps, a segment and a checkpoint every 10, {@code inject} in train. */
    static String config(Path out, long steps, List<Fault> faults) {
        StringBuilder inject = new StringBuilder();
        for (Kind k : List.of(Kind.TASK_FAILURE, Kind.RANK_HANG, Kind.CHECKPOINT_WRITE_FAILURE)) {
            List<String> at = faults.stream().filter(f -> f.kind() == k).map(f -> Long.toString(f.step())).toList();
            if (!at.isEmpty()) {
                String key = switch (k) {
                    case TASK_FAILURE -> "task_failure_at_steps";
                    case RANK_HANG -> "hang_at_steps";
                    default -> "checkpoint_write_failure_at_steps";
                };
                inject.append(inject.length() == 0 ? "" : ", ").append(key).append(": [").append(String.join(", ", at))
                        .append(']');
            }
        }
        return """
                run: {name: chaos, seed: 11, out: "%s"}
                model: {preset: small, vocab: 512, hidden: 64, layers: 2, heads: 2, ffn: 128, recurrent_steps: 2}
                data: {synthetic: {tokens: 60000}}
                train: {workers: 3, device: java, segment_steps: 10, checkpoint_every: 10, keep_checkpoints: 4,
                        timeout_s: 60, retry: {max_failures: 30, window_steps: 1000, backoff_s: 1, backoff_max_s: 2},
                        watchdog: {slack_s: 5, first_step_s: 60}%s}
                stages:
                  - {name: main, steps: %d, seq_len: 64, batch_per_worker: 12, lr: {peak: 0.003}}
                """.formatted(out.toUri(), inject.length() == 0 ? "" : ",\n        inject: {" + inject + "}", steps);
    }

    /**
     * A fault-free run, then the run with {@code faults}, on one cluster under {@code work}; {@code appJar} is the
     * application jar SparkSubmit runs.
     */
    public static Outcome run(Path work, String appJar, long steps, List<Fault> faults, long timeoutSeconds)
            throws Exception {
        Files.createDirectories(work);
        try (StandaloneCluster cluster = new StandaloneCluster(work, 3, 1)) {
            Path refOut = work.resolve("reference");
            long t0 = System.nanoTime();
            Path refCfg = work.resolve("reference.yaml");
            Files.writeString(refCfg, config(refOut, steps, List.of()));
            Process ref = submit(cluster, appJar, refCfg, work.resolve("driver-reference.log"), false);
            if (!ref.waitFor(timeoutSeconds, TimeUnit.SECONDS) || ref.exitValue() != 0) {
                throw new IllegalStateException("the fault-free run failed:\n"
                        + StandaloneCluster.tail(work.resolve("driver-reference.log")));
            }
            double refSeconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf(Locale.ROOT, "chaos: the fault-free run took %.0f s%n", refSeconds);

            Path out = work.resolve("chaos");
            Path cfg = work.resolve("chaos.yaml");
            Files.writeString(cfg, config(out, steps, faults));
            List<Fault> kills = new ArrayList<>(faults.stream()
                    .filter(f -> f.kind() == Kind.EXECUTOR_KILLED || f.kind() == Kind.DRIVER_KILLED).toList());
            List<Fault> fired = new ArrayList<>();
            List<Path> logs = new ArrayList<>();
            long t1 = System.nanoTime();
            long deadline = t1 + TimeUnit.SECONDS.toNanos(timeoutSeconds);
            boolean completed = false;
            for (int driver = 0; System.nanoTime() < deadline; driver++) {
                Path log = work.resolve("driver-chaos-" + driver + ".log");
                logs.add(log);
                Process p = submit(cluster, appJar, cfg, log, driver > 0);
                boolean driverKilled = false;
                while (p.isAlive() && System.nanoTime() < deadline && !driverKilled) {
                    String text = Files.exists(log) ? Files.readString(log) : "";
                    for (var it = kills.iterator(); it.hasNext(); ) {
                        Fault f = it.next();
                        if (!Pattern.compile("stage \\S+ step " + f.step() + " loss").matcher(text).find()) {
                            continue;
                        }
                        if (f.kind() == Kind.DRIVER_KILLED) {
                            p.descendants().forEach(ProcessHandle::destroyForcibly);
                            p.destroyForcibly();
                            driverKilled = true;
                            System.out.println("chaos: killed the driver after step " + f.step());
                        } else {
                            List<ProcessHandle> ex = cluster.ownExecutors();
                            if (ex.isEmpty()) {
                                continue; // between executors; try again on the next look
                            }
                            ProcessHandle victim = ex.get(ex.size() - 1);
                            victim.destroyForcibly();
                            System.out.println("chaos: killed executor JVM pid " + victim.pid() + " after step " + f.step());
                        }
                        fired.add(f);
                        it.remove();
                        break;
                    }
                    Thread.sleep(50);
                }
                if (!p.waitFor(60, TimeUnit.SECONDS)) {
                    p.descendants().forEach(ProcessHandle::destroyForcibly);
                    p.destroyForcibly();
                }
                if (!driverKilled) {
                    completed = !p.isAlive() && p.exitValue() == 0;
                    if (!completed) {
                        System.out.println("chaos: the driver did not complete; its log ends:\n" + StandaloneCluster.tail(log));
                    }
                    break;
                }
                Thread.sleep(2000); // the Master notices the driver is gone and frees the Workers' cores
            }
            double seconds = (System.nanoTime() - t1) / 1e9;
            for (Fault f : faults) {
                if (f.kind().marker() != null
                        && Files.exists(out.resolve("inject").resolve(f.kind().marker() + "-" + f.step()))) {
                    fired.add(f);
                }
            }
            List<Recovery> recoveries = attribute(recoveries(logs), fired);
            boolean identical = completed && java.util.Arrays.equals(weights(refOut, steps, work),
                    weights(out, steps, work));
            return new Outcome(fired, completed, identical, recoveries, seconds, refSeconds);
        }
    }

    /**
     * The failures in the driver logs (in order) and the steps each cost: the highest step logged since the previous
     * recovery, plus one, minus the step the run went back to (steps run but not yet reported are not counted).
     */
    static List<Recovery> recoveries(List<Path> logs) throws IOException {
        List<Recovery> out = new ArrayList<>();
        long hi = -1;
        String cause = "driver killed";
        for (int i = 0; i < logs.size(); i++) {
            if (!Files.exists(logs.get(i))) {
                continue;
            }
            for (String line : Files.readAllLines(logs.get(i))) {
                Matcher m;
                if ((m = STEP.matcher(line)).find()) {
                    hi = Math.max(hi, Long.parseLong(m.group(1)));
                } else if ((m = FAILED.matcher(line)).find()) {
                    cause = m.group(1);
                } else if ((m = RERUN.matcher(line)).find() || (i > 0 && (m = RESUMED.matcher(line)).find())) {
                    long from = m.group(1) == null ? 0 : Long.parseLong(m.group(1));
                    out.add(new Recovery(cause.length() > 160 ? cause.substring(0, 160) + "…" : cause, from,
                            Math.max(from, hi + 1), null));
                    hi = from - 1;
                    cause = "driver killed";
                }
            }
        }
        return out;
    }

    /** Each recovery with the fault that caused it: see {@link Recovery}; failed checkpoint writes cause none. */
    static List<Recovery> attribute(List<Recovery> recoveries, List<Fault> fired) {
        List<Fault> open = new ArrayList<>(fired.stream().filter(f -> f.kind() != Kind.CHECKPOINT_WRITE_FAILURE)
                .sorted(java.util.Comparator.comparingLong(Fault::step)).toList());
        List<Recovery> out = new ArrayList<>();
        for (Recovery r : recoveries) {
            Fault f = open.stream().filter(x -> x.step() >= r.from() && x.step() <= r.upTo()).findFirst().orElse(null);
            open.remove(f);
            out.add(r.of(f));
        }
        return out;
    }

    static Process submit(StandaloneCluster cluster, String appJar, Path cfg, Path log, boolean resume)
            throws IOException {
        return cluster.submit(log, List.of("--master", cluster.masterUrl(), "--deploy-mode", "client",
                "--class", "io.ouro.orchestrator.PretrainApp",
                "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
                "--conf", "spark.ui.port=" + StandaloneCluster.freePort(), "--conf", "spark.executor.memory=1g",
                "--conf", "spark.cores.max=3", "--conf", "spark.executor.cores=1",
                // a re-run after a lost executor waits for its replacement: check the barrier's slots often
                "--conf", "spark.scheduler.barrier.maxConcurrentTasksCheck.interval=1s",
                "--conf", "spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures=200",
                "--conf", "spark.executor.extraClassPath=" + StandaloneCluster.CP,
                "--conf", "spark.executorEnv.SPARK_LOCAL_IP=127.0.0.1",
                appJar, "--config", cfg.toString(), "--linger-ui-s", "0", "--resume", resume ? "auto" : "no"));
    }

    /** The weights of the run's checkpoint of {@code step}, as one safetensors file (ouro export). */
    static byte[] weights(Path run, long step, Path work) throws IOException {
        Path file = work.resolve("export-" + System.nanoTime() + ".safetensors");
        System.out.println(io.ouro.orchestrator.ExportApp.export(run.toUri().toString(), step, file.toUri().toString(),
                new Configuration()));
        return Files.readAllBytes(file);
    }
}
