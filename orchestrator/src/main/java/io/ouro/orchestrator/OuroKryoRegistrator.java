package io.ouro.orchestrator;

import com.esotericsoftware.kryo.Kryo;
import com.esotericsoftware.kryo.serializers.JavaSerializer;
import io.ouro.orchestrator.train.SegmentResult;
import io.ouro.orchestrator.train.StepMetrics;
import org.apache.spark.serializer.KryoRegistrator;

/**
 * Registers the classes the driver and the worker tasks exchange through Spark's serializer. Records
 * have final fields, which Kryo 4's field serializer cannot set on Java 17, so they travel with Java
 * serialization inside Kryo.
 */
public final class OuroKryoRegistrator implements KryoRegistrator {

    @Override
    public void registerClasses(Kryo kryo) {
        kryo.register(SegmentResult.class, new JavaSerializer());
        kryo.register(SegmentResult[].class);
        kryo.register(StepMetrics.class, new JavaSerializer());
        kryo.register(io.ouro.orchestrator.train.Validation.class, new JavaSerializer());
        kryo.register(io.ouro.tokenizer.job.UnitResult.class, new JavaSerializer());
        kryo.register(io.ouro.tokenizer.job.UnitResult.ShardInfo.class, new JavaSerializer());
        kryo.register(java.util.ArrayList.class);
        kryo.register(float[].class);
        kryo.register(double[].class);
    }
}
