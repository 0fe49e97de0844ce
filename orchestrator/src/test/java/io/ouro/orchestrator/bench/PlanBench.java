package io.ouro.orchestrator.bench;

import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.train.Plan;
import io.ouro.worker.backend.MemoryPlan;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code tests/bench.sh plan}: the plan of every stage of the shipped recipes on a device of
 * {@code train.device_memory_gib} (141 GiB, H200 class, unless the config says otherwise): the micro-batch and
 * recomputation each stage runs with, its device memory by kind, and whether it fits.
 */
public final class PlanBench {

    private PlanBench() {
    }

    public static void main(String[] args) {
        List<String> files = args.length > 0 ? List.of(args)
                : List.of("pipeline-configs/ouro-1.4b.yaml", "pipeline-configs/ouro-2.6b.yaml");
        int stages = 0, fit = 0, maxBuffers = 0;
        long largestBuffer = 0;
        double largest = 0;
        String largestName = "";
        for (String f : files) {
            TrainConfig cfg = TrainConfig.load(Path.of(f));
            List<MemoryPlan> plans = Plan.memoryPlans(cfg);
            for (int i = 0; i < plans.size(); i++) {
                MemoryPlan p = plans.get(i);
                String name = Path.of(f).getFileName() + " " + cfg.stages().get(i).name();
                System.out.println(name + ": " + p.describe(cfg.train().deviceBytes()));
                stages++;
                if (p.fits(cfg.train().deviceBytes())) {
                    fit++;
                }
                maxBuffers = Math.max(maxBuffers, p.buffers());
                largestBuffer = Math.max(largestBuffer, p.largestBytes());
                if (p.deviceBytes() > largest) {
                    largest = p.deviceBytes();
                    largestName = name.replace(' ', ':');
                }
            }
        }
        // every buffer below Aparapi 3.0.2's 2^31 bytes (its sizes are 32-bit ints)
        System.out.printf(Locale.ROOT, "RESULT plan stages=%d fit=%d largest_gib=%.1f largest=%s max_buffers=%d "
                        + "largest_buffer_bytes=%d below_2gib=%d ratio=%.3f%n", stages, fit, largest / (1L << 30),
                largestName, maxBuffers, largestBuffer, largestBuffer < (1L << 31) ? 1 : 0, (double) fit / stages);
    }
}
