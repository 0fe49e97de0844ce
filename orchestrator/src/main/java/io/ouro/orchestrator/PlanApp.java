package io.ouro.orchestrator;

import java.util.List;

import io.ouro.orchestrator.config.Stage;
import io.ouro.tokenizer.cli.Args;
import io.ouro.orchestrator.config.ConfigException;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.train.Plan;
import io.ouro.orchestrator.train.Rates;
import io.ouro.orchestrator.train.SparkSettings;

/**
 * {@code ouro plan --config FILE [--workers W] [--rates FILE | --tflops X] [--spark-conf]}: validates a pipeline config
 * and prints the resolved plan, with each stage's step time and wall time and the run's length at the measured rate of
 * a {@code RESULT layer} line ({@code --rates}: the output of {@code tests/bench.sh layer} or of the GPU check), at a
 * given one ({@code --tflops}, per worker) or at the assumed ones ({@link Rates#assumed()}), labelled as such; with
 * {@code --spark-conf}, only the Spark settings the run needs, as a {@code spark-defaults.conf} fragment.
 * {@code --workers} plans the run at W workers instead of the config's {@code train.workers}. FILE is a path or any
 * Hadoop file system URI ({@code hdfs://...}).
 */
public final class PlanApp {

    private PlanApp() {
    }

    static final String USAGE = "ouro plan --config FILE [--workers W] [--rates FILE | --tflops X] [--spark-conf]";

    public static void main(String[] args) {
        Args a = Args.orExit(args, USAGE);
        String config = a.get("config", null);
        int workers = 0;
        boolean spark = a.has("spark-conf");
        Rates rates = Rates.assumed();
        try {
            workers = a.integer("workers", 0);
            if (a.has("rates") && a.has("tflops")) {
                throw a.error("--rates and --tflops: give one of them");
            }
            if (a.has("tflops")) {
                rates = Rates.given(a.number("tflops", 0));
            } else if (a.has("rates")) {
                rates = Rates.measured(java.nio.file.Path.of(a.get("rates", null)));
            }
            if (a.has("workers") && workers < 1) {
                throw a.error("--workers: expected a positive integer, got " + workers);
            }
            a.required("config");
        } catch (IllegalArgumentException | ConfigException | java.io.UncheckedIOException e) {
            System.err.println(e.getMessage());
            System.exit(2);
        }
        try {
            TrainConfig cfg = load(config, workers);
            if (spark) {
                int own = workers > 0 ? TrainConfig.parse(config, TrainConfig.read(config,
                        new org.apache.hadoop.conf.Configuration())).train().workers() : cfg.train().workers();
                if (own != cfg.train().workers()) {
                    System.out.println("# NOTE: planned at --workers " + cfg.train().workers() + "; the config says"
                            + " train.workers " + own + ", which the driver uses: set train.workers: "
                            + cfg.train().workers() + " in the config you launch");
                }
                SparkSettings.fragment(cfg).forEach(System.out::println);
                return;
            }
            for (String line : Plan.describe(cfg)) {
                System.out.println(line);
            }
            for (String line : rates.describe(cfg)) {
                System.out.println(line);
            }
            Stage prev = null;
            for (Stage s : cfg.stages()) {
                if (prev != null) {
                    System.out.println(Plan.transition(prev, s));
                }
                prev = s;
            }
            List<Plan.Move> moves = Plan.moves(cfg);
            Plan.Move worst = null;
            for (Plan.Move m : moves) {
                if (worst == null || m.heapBytes() > worst.heapBytes()) {
                    worst = m;
                }
                if (!m.fits(cfg.train().deviceBytes())) {
                    throw new ConfigException("the " + m.describe() + " does not fit train.device_memory_gib "
                            + cfg.train().deviceMemoryGib());
                }
            }
            if (worst != null) {
                System.out.println(moves.size() + " backend moves, each within the device (the worst " + worst.describe()
                        + ")");
            }
            for (String line : Plan.onThisDevice(cfg)) {
                System.out.println(line);
            }
        } catch (ConfigException e) {
            System.err.println("config error: " + e.getMessage());
            System.exit(2);
        }
    }

    /** The config at {@code uri}, at {@code workers} workers when positive (else its own train.workers). */
    static TrainConfig load(String uri, int workers) {
        org.apache.hadoop.conf.Configuration conf = new org.apache.hadoop.conf.Configuration();
        if (workers <= 0) {
            return TrainConfig.load(uri, conf);
        }
        return TrainConfig.parseWithWorkers(uri, TrainConfig.read(uri, conf), workers);
    }
}
