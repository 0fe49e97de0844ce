package io.ouro.orchestrator;

import io.ouro.tokenizer.cli.Args;
import io.ouro.orchestrator.config.ConfigException;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.train.Trainer;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

import java.util.Locale;

/**
 * The pretraining driver: {@code spark-submit --class io.ouro.orchestrator.PretrainApp ouro-app.jar
 * --config FILE [--data URI] [--out URI] [--resume auto] [--linger-ui-s N]}, or {@code deploy/bin/ouro train} for local
 * runs ({@code --master} defaults to {@code local[W]} when nothing set one).
 */
public final class PretrainApp {

    private PretrainApp() {
    }

    static final String USAGE = "PretrainApp --config FILE [--master URL] [--data URI] [--out URI] [--resume auto|no]"
            + " [--linger-ui-s N]";

    public static void main(String[] args) throws Exception {
        Args a = Args.orExit(args, USAGE);
        String config = null, master = a.get("master", null), data = a.get("data", null), out = a.get("out", null);
        int linger = 0;
        boolean resume = false;
        try {
            config = a.required("config");
            linger = a.integer("linger-ui-s", 0);
            String mode = a.get("resume", "no");
            if (!mode.equals("auto") && !mode.equals("no")) {
                throw a.error("--resume: expected auto or no, got " + mode);
            }
            resume = mode.equals("auto");
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
        }
        TrainConfig cfg;
        try {
            cfg = TrainConfig.load(config, hadoopConf(new SparkConf()));
            cfg = withOverrides(cfg, data, out);
        } catch (ConfigException e) {
            System.err.println("config error: " + e.getMessage());
            System.exit(2);
            return;
        }
        SparkConf conf = sparkConf(cfg);
        if (master != null) {
            conf.setMaster(master);
        } else if (!conf.contains("spark.master")) {
            conf.setMaster("local[" + cfg.train().workers() + "]");
        }
        String refused = refusal(conf);
        if (refused != null) {
            System.err.println("spark settings error: " + refused);
            System.exit(2);
            return;
        }
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
            log("Spark UI: " + jsc.sc().uiWebUrl().getOrElse(() -> "(disabled)") + ", application " + jsc.sc().applicationId());
            new Trainer(jsc, cfg, PretrainApp::log).run(false, resume);
            if (linger > 0) {
                log("keeping the driver (and its UI) up for " + linger + " s");
                Thread.sleep(linger * 1000L);
            }
        }
    }

    /** The Spark settings every run uses: app name, Kryo with the project's classes registered, the progress plugin. */
    public static SparkConf sparkConf(TrainConfig cfg) {
        return new SparkConf()
                .setAppName("ouro pretrain · " + cfg.run().name())
                .set("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
                .set("spark.kryo.registrator", OuroKryoRegistrator.class.getName())
                // live step metrics from rank 0 and the UI's progress gauges
                .set("spark.plugins", io.ouro.orchestrator.train.ProgressPlugin.class.getName())
                // barrier stages need all W slots at once; fail fast instead of waiting forever
                .set("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "10");
    }

    /**
     * Why a training run cannot start under these Spark settings, or null. Each segment is a barrier stage, which Spark
     * refuses under dynamic allocation (at the first segment, after the executors are up); this says so before.
     */
    static String refusal(SparkConf conf) {
        if (conf.getBoolean("spark.dynamicAllocation.enabled", false)) {
            return "spark.dynamicAllocation.enabled is true, but every training segment is a barrier stage of"
                    + " train.workers tasks, which Spark does not run under dynamic allocation; set"
                    + " spark.dynamicAllocation.enabled=false and spark.executor.instances to train.workers"
                    + " (`ouro plan --config F --spark-conf` prints the settings a run needs)";
        }
        return null;
    }

    /** The Hadoop settings of the cluster (core-site.xml and friends on the class path) with Spark's spark.hadoop.*. */
    static org.apache.hadoop.conf.Configuration hadoopConf(SparkConf conf) {
        org.apache.hadoop.conf.Configuration h = new org.apache.hadoop.conf.Configuration();
        for (scala.Tuple2<String, String> kv : conf.getAllWithPrefix("spark.hadoop.")) {
            h.set(kv._1(), kv._2());
        }
        return h;
    }

    static TrainConfig withOverrides(TrainConfig cfg, String data, String out) {
        java.util.List<TrainConfig.Source> sources = cfg.sources();
        if (data != null) {
            if (sources.size() != 1) {
                throw new io.ouro.orchestrator.config.ConfigException("--data replaces the single data source; "
                        + cfg.file() + " has " + sources.size() + " (set each source's manifest in the file)");
            }
            sources = java.util.List.of(new TrainConfig.Source(sources.get(0).name(), data, 0, 0));
        }
        TrainConfig.Run r = out == null ? cfg.run() : new TrainConfig.Run(cfg.run().name(), cfg.run().seed(), out);
        TrainConfig c = new TrainConfig(cfg.file(), r, cfg.model(), sources, cfg.train(), cfg.stages(), cfg.initFrom());
        return out != null && c.train().checkpointEvery() == 0 ? c.withCheckpointEvery(c.train().segmentSteps()) : c;
    }


    static void log(String line) {
        System.out.println(String.format(Locale.ROOT, "%tT ouro %s", System.currentTimeMillis(), line));
    }
}
