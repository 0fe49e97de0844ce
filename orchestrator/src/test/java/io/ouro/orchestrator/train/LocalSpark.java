package io.ouro.orchestrator.train;

import io.ouro.orchestrator.PretrainApp;
import io.ouro.orchestrator.config.TrainConfig;
import org.apache.spark.SparkConf;

/** The Spark settings of the local-mode training tests: the app's, on local[2], loopback only, no UI. */
final class LocalSpark {

    private LocalSpark() {
    }

    static SparkConf conf(TrainConfig cfg) {
        return PretrainApp.sparkConf(cfg).setMaster("local[2]").set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1");
    }
}
