package io.ouro.orchestrator.bench;

import io.ouro.orchestrator.cluster.ChaosRun;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;

/**
 * {@code tests/bench.sh chaos [faults]}: training on a local standalone cluster (W = 3) under the first
 * {@code faults} of {@link ChaosRun#FULL} (default all 12, of five kinds, over 12 segments), against a fault-free run
 * of the same config; ends with {@code RESULT chaos faults=… kinds=… completed=… identical=… lost_steps=…}.
 * The application jar comes from {@code -Douro.app.jar}.
 */
public final class ChaosBench {

    private ChaosBench() {
    }

    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : ChaosRun.FULL.size();
        if (n < 0 || n > ChaosRun.FULL.size()) {
            throw new IllegalArgumentException("faults: 0 to " + ChaosRun.FULL.size() + ", got " + n);
        }
        String appJar = System.getProperty("ouro.app.jar");
        if (appJar == null || !Files.exists(Path.of(appJar))) {
            throw new IllegalStateException("-Douro.app.jar names no built application jar: " + appJar);
        }
        List<ChaosRun.Fault> faults = ChaosRun.FULL.subList(0, n);
        faults.forEach(f -> System.out.println("chaos: planned " + f.kind() + " at step " + f.step()));
        Path work = Path.of("orchestrator", "target", "chaos-bench-" + System.currentTimeMillis()).toAbsolutePath();
        ChaosRun.Outcome o = ChaosRun.run(work, appJar, ChaosRun.FULL_STEPS, faults, 1800);
        o.fired().stream().sorted(Comparator.comparingLong(ChaosRun.Fault::step))
                .forEach(f -> System.out.println("chaos: fired " + f.kind() + " at step " + f.step()));
        o.recoveries().forEach(r -> System.out.println("chaos: " + (r.fault() == null ? "unplanned failure"
                : r.fault().kind() + " at step " + r.fault().step()) + ": back to step " + r.from() + ", "
                + r.lost() + " logged step(s) run again; driver's cause: " + r.cause()));
        System.out.println("chaos: logs under " + work);
        System.out.println(o.resultLine());
        System.exit(o.completed() && o.identical() ? 0 : 1);
    }
}
