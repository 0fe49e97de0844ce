package io.ouro.orchestrator.train;

import com.codahale.metrics.Gauge;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * Live progress through Spark's plugin API ({@code spark.plugins}, set by {@code PretrainApp.sparkConf}).
 * Rank 0 sends each step's metrics line to the driver over Spark's own RPC as the step ends
 * ({@link #send}: enqueued, never waited on); the driver's loop takes them ({@link #take}) and logs them
 * as they happen. The driver side also publishes the running segment's current stage, step, loss and
 * tokens/s, the gradient exchange's time and hidden share, and the hidden share of ZeRO-1's all-gather, as gauges
 * in Spark's metrics system, which the Spark UI serves at {@code /metrics/json/}
 * (and any configured sink: Prometheus, JMX, Graphite) under {@code plugin.io.ouro...ProgressPlugin.*}.
 */
public final class ProgressPlugin implements SparkPlugin {

    /** Lines received from rank 0, bounded: a driver that falls behind drops lines rather than memory. */
    private static final BlockingQueue<String> RECEIVED = new ArrayBlockingQueue<>(100_000);
    private static volatile PluginContext executorContext;
    private static volatile Object[] current = {"", -1L, Double.NaN, 0.0, -1L, -1L, 0.0, Double.NaN, Double.NaN};

    @Override
    public DriverPlugin driverPlugin() {
        return new DriverPlugin() {
            @Override
            public Map<String, String> init(SparkContext sc, PluginContext ctx) {
                String[] names = {"stage", "step", "loss", "tokens_per_s", "segment_first_step", "segment_last_step",
                        "exchange_ms", "exchange_hidden", "gather_hidden"};
                for (int i = 0; i < names.length; i++) {
                    int k = i;
                    ctx.metricRegistry().register(names[i], (Gauge<Object>) () -> current[k]);
                }
                RECEIVED.clear();
                return Map.of();
            }

            @Override
            public Object receive(Object message) {
                if (message instanceof String line) {
                    RECEIVED.offer(line);
                }
                return null;
            }
        };
    }

    @Override
    public ExecutorPlugin executorPlugin() {
        return new ExecutorPlugin() {
            @Override
            public void init(PluginContext ctx, Map<String, String> extraConf) {
                executorContext = ctx;
            }

            @Override
            public void shutdown() {
                executorContext = null;
            }
        };
    }

    /** From a task: sends {@code line} to the driver; false when the plugin is not active or the send failed. */
    static boolean send(String line) {
        PluginContext ctx = executorContext;
        if (ctx == null) {
            return false;
        }
        try {
            ctx.send(line);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** On the driver: the lines received so far, in arrival order. */
    static List<String> take() {
        List<String> out = new ArrayList<>();
        RECEIVED.drainTo(out);
        return out;
    }

    /** On the driver: what the gauges show. */
    static void show(String stage, long step, double loss, double tokensPerS, long segmentFirst, long segmentLast,
                     double exchangeMs, double hidden, double gatherHidden) {
        current = new Object[] {stage, step, loss, tokensPerS, segmentFirst, segmentLast, exchangeMs, hidden,
                gatherHidden};
    }
}
