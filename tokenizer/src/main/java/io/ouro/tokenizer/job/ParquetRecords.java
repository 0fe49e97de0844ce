package io.ouro.tokenizer.job;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Rows of a Parquet file's string column, through parquet-hadoop (which Spark SQL brings); in a class of
 * its own so that text and JSON inputs never need Parquet on the classpath.
 */
final class ParquetRecords {

    /** A row: its text, or null with the raw bytes (invalid UTF-8) or null bytes (missing or not a string). */
    interface Sink {
        void row(String text, byte[] bytes, long row) throws IOException;
    }

    private ParquetRecords() {
    }

    static void read(Path in, Configuration conf, String field, Sink sink) throws IOException {
        var utf8 = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        try (ParquetReader<Group> reader = ParquetReader.builder(new GroupReadSupport(), in).withConf(conf).build()) {
            Group g;
            long row = 0;
            while ((g = reader.read()) != null) {
                long r = row++;
                var type = g.getType();
                if (!type.containsField(field) || !type.getType(field).isPrimitive()
                        || g.getFieldRepetitionCount(field) == 0) {
                    sink.row(null, null, r);
                    continue;
                }
                byte[] b = g.getBinary(field, 0).getBytes();
                try {
                    sink.row(utf8.decode(ByteBuffer.wrap(b)).toString(), b, r);
                } catch (CharacterCodingException e) {
                    sink.row(null, b, r);
                }
            }
        }
    }
}
