package io.ouro.tokenizer.shard;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.UInt2Vector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.nio.channels.Channels;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/** A shard as jobs before token-shard-2 wrote it (one row per document, 100 documents per batch), for tests. */
final class V1Shard {

    private V1Shard() {
    }

    /** Writes {@code docs} random uint16 documents; returns the token stream. */
    static int[] write(FileSystem fs, Path p, int eos, int docs, long seed) throws IOException {
        Field child = new Field("item", FieldType.notNullable(new ArrowType.Int(16, false)), null);
        Schema schema = new Schema(List.of(new Field("tokens", FieldType.notNullable(ArrowType.List.INSTANCE),
                List.of(child))), Map.of("ouro.format", "token-shard-1", "ouro.source", "old", "ouro.tokenizer", "t",
                "ouro.eos", Integer.toString(eos)));
        SplittableRandom r = new SplittableRandom(seed);
        int[] all = new int[0];
        try (BufferAllocator a = new RootAllocator(); VectorSchemaRoot root = VectorSchemaRoot.create(schema, a);
             FSDataOutputStream o = fs.create(p, true);
             ArrowFileWriter w = new ArrowFileWriter(root, null, Channels.newChannel(o))) {
            w.start();
            ListVector list = (ListVector) root.getVector("tokens");
            for (int b = 0; b < docs; b += 100) {
                list.allocateNew();
                UInt2Vector data = (UInt2Vector) list.getDataVector();
                int rows = Math.min(100, docs - b);
                for (int row = 0; row < rows; row++) {
                    int n = r.nextInt(200) + 1;
                    int start = list.startNewValue(row);
                    while (data.getValueCapacity() < start + n) {
                        data.reAlloc();
                    }
                    int at = all.length;
                    all = Arrays.copyOf(all, at + n);
                    for (int i = 0; i < n; i++) {
                        int id = i == n - 1 ? eos : r.nextInt(eos);
                        data.set(start + i, (char) id);
                        all[at + i] = id;
                    }
                    list.endValue(row, n);
                }
                list.setValueCount(rows);
                root.setRowCount(rows);
                w.writeBatch();
            }
            w.end();
        }
        return all;
    }
}
