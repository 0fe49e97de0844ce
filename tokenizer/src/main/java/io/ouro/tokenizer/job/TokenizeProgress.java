package io.ouro.tokenizer.job;

import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.util.LongAccumulator;

import java.util.Locale;
import java.util.function.Consumer;

/** The driver's progress line every 2 s while the units run: files done, documents, tokens, MB/s. */
final class TokenizeProgress {

    private TokenizeProgress() {
    }

    /** Starts the daemon thread; interrupt it to stop. */
    static Thread start(JavaSparkContext jsc, int units, LongAccumulator docs, LongAccumulator toks,
                        LongAccumulator bytes, long t0, Consumer<String> log) {
        Thread th = new Thread(() -> {
            try {
                while (true) {
                    Thread.sleep(2000);
                    int done = 0;
                    for (int id : jsc.statusTracker().getActiveStageIds()) {
                        var st = jsc.statusTracker().getStageInfo(id);
                        if (st != null) {
                            done += st.numCompletedTasks();
                        }
                    }
                    double sec = (System.nanoTime() - t0) / 1e9;
                    log.accept(String.format(Locale.ROOT, "tokenize: %d/%d files done, %,d documents, %,d tokens,"
                            + " %.2f MB/s", done, units, docs.value(), toks.value(), bytes.value() / 1e6 / sec));
                }
            } catch (InterruptedException e) {
                // done
            }
        }, "tokenize-progress");
        th.setDaemon(true);
        th.start();
        return th;
    }
}
