package io.ouro.worker.bench;

import java.nio.file.Files;
import java.nio.file.Path;

/** The machine's load average as the benchmarks print it (the CPU is shared; ratios are taken in one run). */
final class LoadAverage {

    private LoadAverage() {
    }

    static String line() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " " + f[1] + " " + f[2] + " (1, 5, 15 min) on " + Runtime.getRuntime().availableProcessors()
                    + " CPUs";
        } catch (Exception e) {
            return "unknown (" + e.getMessage() + ")";
        }
    }
}
