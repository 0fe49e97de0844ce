package io.ouro.orchestrator;

import io.ouro.tokenizer.cli.Args;
import io.ouro.orchestrator.checkpoint.CheckpointReader;
import io.ouro.orchestrator.checkpoint.CheckpointStore;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;

/**
 * {@code ouro export --run URI [--step N] --to URI}: the weights of a checkpoint (the newest valid one
 * under the run's output, or step N) as one consolidated safetensors file with HF Ouro names, streamed
 * from the shards whatever number of ranks wrote them.
 */
public final class ExportApp {

    private ExportApp() {
    }

    public static void main(String[] args) throws IOException {
        Args a = Args.orExit(args, "ouro export --run URI [--step N] --to URI");
        String run = null, to = null;
        long step = -1;
        try {
            run = a.required("run");
            to = a.required("to");
            step = a.longValue("step", -1);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
        }
        System.out.println(export(run, step, to, new Configuration()));
    }

    /** Exports step {@code step} (-1: the newest valid) of the run under {@code run} to {@code to}; says what it did. */
    public static String export(String run, long step, String to, Configuration conf) throws IOException {
        CheckpointStore store = new CheckpointStore(run, 1, conf);
        long s = step >= 0 ? step : store.latestValid(Long.MAX_VALUE, null, m -> System.err.println("warning: " + m))
                .orElseThrow(() -> new IOException("no valid checkpoint under " + store.root())).step();
        Path dst = new Path(to);
        FileSystem fs = dst.getFileSystem(conf);
        try (CheckpointReader r = store.open(s, null);
             OutputStream out = new BufferedOutputStream(fs.create(dst, true), 1 << 20)) {
            r.exportWeights(out);
            return "exported the weights of " + r.path() + " (" + r.tensors().size() + " tensors, written by "
                    + r.world() + " rank(s)) to " + dst;
        }
    }

}
