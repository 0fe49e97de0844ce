package io.ouro.orchestrator;

import io.ouro.orchestrator.config.ConfigException;
import io.ouro.orchestrator.config.TrainConfig;
import io.ouro.orchestrator.train.Plan;

import java.nio.file.Path;

/** {@code ouro plan --config FILE}: validates a pipeline config and prints the resolved plan. */
public final class PlanApp {

    private PlanApp() {
    }

    public static void main(String[] args) {
        if (args.length != 2 || !args[0].equals("--config")) {
            System.err.println("usage: ouro plan --config FILE");
            System.exit(2);
        }
        try {
            TrainConfig cfg = TrainConfig.load(Path.of(args[1]));
            for (String line : Plan.describe(cfg)) {
                System.out.println(line);
            }
            TrainConfig.Stage prev = null;
            for (TrainConfig.Stage s : cfg.stages()) {
                if (prev != null) {
                    System.out.println(Plan.transition(prev, s));
                }
                prev = s;
            }
            for (String line : Plan.onThisDevice(cfg)) {
                System.out.println(line);
            }
        } catch (ConfigException e) {
            System.err.println("config error: " + e.getMessage());
            System.exit(2);
        }
    }
}
