package io.ouro.orchestrator.cluster;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A Spark standalone cluster for tests: a Master and N Workers, each a separate JVM started from this
 * JVM's classpath, all on 127.0.0.1, with a stand-in SPARK_HOME (an empty jars/ folder). Logs go to files
 * under the work folder; everything is killed on close.
 */
final class StandaloneCluster implements AutoCloseable {

    static final String CP = System.getProperty("java.class.path");
    static final String JAVA = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    static final List<String> OPENS = List.of("-XX:+IgnoreUnrecognizedVMOptions", "--add-modules=jdk.incubator.vector",
            "--add-opens=java.base/java.lang=ALL-UNNAMED", "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
            "--add-opens=java.base/java.net=ALL-UNNAMED", "--add-opens=java.base/java.nio=ALL-UNNAMED",
            "--add-opens=java.base/java.util=ALL-UNNAMED", "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED", "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
            "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
            "--add-opens=java.base/sun.security.action=ALL-UNNAMED", "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
            "-Djdk.reflect.useDirectMethodHandle=false", "-Dio.netty.tryReflectionSetAccessible=true");

    final Path dir;
    final Path sparkHome;
    final int masterPort, masterUi;
    private final List<Process> procs = new ArrayList<>();
    private final List<Process> workers = new ArrayList<>();

    StandaloneCluster(Path dir, int workerCount, int coresPerWorker) throws Exception {
        this.dir = Files.createDirectories(dir);
        this.sparkHome = Files.createDirectories(dir.resolve("spark-home/jars"));
        masterPort = freePort();
        masterUi = freePort();
        procs.add(start("master", List.of("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                "--port", Integer.toString(masterPort), "--webui-port", Integer.toString(masterUi))));
        for (int i = 0; i < workerCount; i++) {
            Process w = start("worker-" + i, List.of("org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                    "--cores", Integer.toString(coresPerWorker), "--memory", "1536m", "--webui-port",
                    Integer.toString(freePort()), "--work-dir", Files.createDirectories(dir.resolve("work-" + i)).toString(),
                    masterUrl()));
            procs.add(w);
            workers.add(w);
        }
        waitForWorkers(workerCount, Duration.ofSeconds(120));
    }

    String masterUrl() {
        return "spark://127.0.0.1:" + masterPort;
    }

    Process start(String name, List<String> args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(JAVA, "-Xmx512m"));
        cmd.addAll(OPENS);
        cmd.add("-cp");
        cmd.add(CP);
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve(name + ".log").toFile());
        env(pb);
        return pb.start();
    }

    void env(ProcessBuilder pb) {
        pb.environment().put("SPARK_HOME", sparkHome.getParent().toString());
        pb.environment().put("SPARK_SCALA_VERSION", "2.13");
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        pb.environment().put("SPARK_LOCAL_HOSTNAME", "127.0.0.1");
        pb.environment().put("POCL_EXTRA_BUILD_FLAGS", "-cl-unsafe-math-optimizations");
    }

    void waitForWorkers(int n, Duration timeout) throws Exception {
        long end = System.nanoTime() + timeout.toNanos();
        String last = "";
        while (System.nanoTime() < end) {
            try {
                last = get("http://127.0.0.1:" + masterUi + "/json/");
                int alive = last.split("\"state\"\\s*:\\s*\"ALIVE\"", -1).length - 1;
                if (alive >= n) {
                    return;
                }
            } catch (IOException e) {
                last = e.toString();
            }
            Thread.sleep(500);
        }
        throw new IllegalStateException("workers did not register within " + timeout + "; master says " + last
                + "\nmaster log:\n" + tail(dir.resolve("master.log")));
    }

    /** Runs SparkSubmit in a child JVM; returns its exit code, output in {@code log}. */
    Process submit(Path log, List<String> args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(JAVA, "-Xmx1g"));
        cmd.addAll(OPENS);
        cmd.add("-cp");
        cmd.add(CP);
        cmd.add("org.apache.spark.deploy.SparkSubmit");
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        env(pb);
        Process p = pb.start();
        procs.add(p);
        return p;
    }

    /** The executor JVMs (CoarseGrainedExecutorBackend) running now on this machine, of any cluster. */
    private static List<ProcessHandle> executors() {
        List<ProcessHandle> out = new ArrayList<>();
        ProcessHandle.allProcesses().forEach(p -> {
            String c;
            try {
                c = Files.readString(Path.of("/proc", Long.toString(p.pid()), "cmdline"), StandardCharsets.ISO_8859_1);
            } catch (IOException | RuntimeException e) {
                c = p.info().commandLine().orElse("");
            }
            if (c.contains("CoarseGrainedExecutorBackend")) {
                out.add(p);
            }
        });
        return out;
    }

    /**
     * The executor JVMs of this cluster's Workers (their command lines name this cluster's folder), not those of
     * another cluster on the same machine: another session's test killing every executor JVM it saw once cost a chaos
     * run two unplanned failures.
     */
    List<ProcessHandle> ownExecutors() {
        List<ProcessHandle> out = new ArrayList<>();
        for (ProcessHandle p : executors()) {
            try {
                String c = Files.readString(Path.of("/proc", Long.toString(p.pid()), "cmdline"), StandardCharsets.ISO_8859_1);
                if (c.contains(dir.toString())) {
                    out.add(p);
                }
            } catch (IOException | RuntimeException e) {
                // gone, or not readable: not one to kill
            }
        }
        return out;
    }

    static String get(String url) throws IOException {
        try {
            HttpResponse<String> r = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build().send(
                    HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
                    HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                throw new IOException(url + ": HTTP " + r.statusCode());
            }
            return r.body();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    static String tail(Path f) {
        try {
            List<String> l = Files.readAllLines(f);
            return String.join("\n", l.subList(Math.max(0, l.size() - 40), l.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            return s.getLocalPort();
        }
    }

    @Override
    public void close() {
        for (ProcessHandle e : ownExecutors()) {
            e.destroyForcibly();
        }
        for (Process p : procs) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        for (Process p : procs) {
            try {
                p.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    static String classpathSeparator() {
        return File.pathSeparator;
    }
}
