package io.ouro.orchestrator.bench;

import io.ouro.orchestrator.config.ConfigException;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.train.Plan;
import io.ouro.worker.backend.MemoryPlan;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code tests/bench.sh plan}: the plan of every stage of the shipped recipes on a device of
 * {@code train.device_memory_gib} (141 GiB, H200 class, unless the config says otherwise): the micro-batch and
 * recomputation each stage runs with, its device memory by kind, and whether it fits; at the config's own W, and
 * again at W = 64 and 256 ({@code ouro plan --workers W}), where a stage whose global batch does not divide counts
 * as planned but not fitting; and at each W the stages' step time and wall time and the run's length at the assumed
 * rates ({@code Rates.assumed()}, what {@code ouro plan --workers W} prints without {@code --rates}).
 */
public final class PlanBench {

    private PlanBench() {
    }

    static final int[] WORKERS = {64, 256};

    public static void main(String[] args) {
        List<String> files = args.length > 0 ? List.of(args)
                : List.of("pipeline-configs/ouro-1.4b.yaml", "pipeline-configs/ouro-2.6b.yaml");
        int stages = 0, fit = 0, maxBuffers = 0, transitions = 0, transitionsFit = 0;
        long largestBuffer = 0;
        double largest = 0;
        String largestName = "";
        StringBuilder perW = new StringBuilder();
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
            String recipe = Path.of(f).getFileName().toString().replaceFirst("\\.yaml$", "");
            for (int w : WORKERS) {
                int[] sf = atWorkers(f, w, cfg.stages().size());
                perW.append(String.format(Locale.ROOT, " %s_w%d_stages=%d %s_w%d_fit=%d %s_w%d_transitions=%d "
                                + "%s_w%d_transitions_fit=%d", recipe, w, sf[0], recipe, w, sf[1], recipe, w, sf[2], recipe,
                        w, sf[3]));
                transitions += sf[2];
                transitionsFit += sf[3];
            }
        }
        // every buffer below Aparapi 3.0.2's 2^31 bytes (its sizes are 32-bit ints)
        System.out.printf(Locale.ROOT, "RESULT plan stages=%d fit=%d largest_gib=%.1f largest=%s max_buffers=%d "
                        + "largest_buffer_bytes=%d below_2gib=%d ratio=%.3f%s transitions=%d transitions_fit=%d%n", stages,
                fit, largest / (1L << 30), largestName, maxBuffers, largestBuffer, largestBuffer < (1L << 31) ? 1 : 0,
                (double) fit / stages, perW, transitions, transitionsFit);
    }

    /**
     * {stages, stages that fit, backend moves, moves that fit} of the config at W workers; a config that W cannot run:
     * all its stages, none fit, no moves.
     */
    static int[] atWorkers(String file, int workers, int stages) {
        TrainConfig cfg;
        try {
            cfg = TrainConfig.parseWithWorkers(file, Files.readString(Path.of(file)), workers);
        } catch (ConfigException e) {
            System.out.println(file + " at W = " + workers + ": " + e.getMessage());
            return new int[] {stages, 0, 0, 0};
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int fit = 0;
        List<MemoryPlan> plans = Plan.memoryPlans(cfg);
        for (int i = 0; i < plans.size(); i++) {
            MemoryPlan p = plans.get(i);
            boolean ok = p.fits(cfg.train().deviceBytes());
            fit += ok ? 1 : 0;
            System.out.printf(Locale.ROOT, "%s at W = %d: stage %s, %d steps, %d x %d tokens per worker: %s%n",
                    Path.of(file).getFileName(), workers, cfg.stages().get(i).name(), cfg.stages().get(i).steps(),
                    Math.max(cfg.stages().get(i).batchPerWorker(), cfg.stages().get(i).batchStart()),
                    cfg.stages().get(i).seqLen(), ok ? "fits" : "DOES NOT FIT");
        }
        // step time and run length at the assumed rates, as ouro plan --workers W prints them
        for (String line : io.ouro.orchestrator.train.Rates.assumed().describe(cfg)) {
            System.out.printf(Locale.ROOT, "%s at W = %d: %s%n", Path.of(file).getFileName(), workers, line.trim());
        }
        int moves = 0, movesFit = 0;
        Plan.Move worst = null;
        for (Plan.Move m : Plan.moves(cfg)) {
            moves++;
            movesFit += m.fits(cfg.train().deviceBytes()) ? 1 : 0;
            if (worst == null || m.heapBytes() > worst.heapBytes()) {
                worst = m;
            }
        }
        if (worst != null) {
            System.out.printf(Locale.ROOT, "%s at W = %d: %d backend moves, %d fit; the worst %s%n",
                    Path.of(file).getFileName(), workers, moves, movesFit, worst.describe());
        }
        return new int[] {plans.size(), fit, moves, movesFit};
    }
}
