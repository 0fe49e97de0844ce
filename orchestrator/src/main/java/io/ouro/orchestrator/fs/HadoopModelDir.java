package io.ouro.orchestrator.fs;

import io.ouro.tokenizer.fs.HadoopDir;
import io.ouro.worker.hf.HfModelDir;
import org.apache.hadoop.conf.Configuration;

import java.io.IOException;

/** An HF model directory on any Hadoop file system: the shared {@link HadoopDir} as the worker's {@link HfModelDir.Files}. */
public final class HadoopModelDir extends HadoopDir implements HfModelDir.Files {

    public HadoopModelDir(String dir, Configuration conf) throws IOException {
        super(dir, conf);
    }
}
