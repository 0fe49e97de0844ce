package io.ouro.worker.bench;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.opencl.OpenCL;
import io.ouro.worker.model.DeviceSpec;
import io.ouro.worker.opencl.HostArrays;
import io.ouro.worker.opencl.OpenClDevices;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * What Aparapi 3.0.2's OpenCL binding ({@code OpenCLDevice.bind}) does with device buffers, measured: the time of a
 * bound kernel that touches one element, called on a small and on a large array (every call copies each read-write
 * array whole, both ways), and what its {@code put}/{@code get} do. {@code tests/bench.sh binding [device] [MiB]};
 * ratio = large-array call time / small-array call time (1 would mean the buffer stays resident).
 */
public final class BindingBench {

    /** One work item adds 1 to x[0]: the work is the same whatever the array's size. */
    public interface Touch extends OpenCL<Touch> {
        @Kernel("touch")
        Touch touch(Range range, @GlobalReadWrite("x") float[] x);
    }

    private BindingBench() {
    }

    public static void main(String[] args) {
        OpenCLDevice device = OpenClDevices.select(DeviceSpec.parse(args.length > 0 ? args[0] : "opencl:0"));
        int mib = args.length > 1 ? Integer.parseInt(args[1]) : 64;
        String source = "__kernel void touch(__global float *x) { x[0] = x[0] + 1.0f; }\n";
        Touch t = device.bind(Touch.class, source);
        float[] small = HostArrays.floats(1), large = HostArrays.floats(mib << 18);
        Range one = Range.create(device, 1, 1);
        double smallMs = time(t, one, small), largeMs = time(t, one, large);
        System.out.printf(Locale.ROOT, "bound kernel on %d floats: %.3f ms/call; on %d floats (%d MiB): %.3f ms/call%n",
                small.length, smallMs, large.length, mib, largeMs);
        System.out.printf(Locale.ROOT, "results on the host after the calls: small[0]=%.0f large[0]=%.0f (each call's "
                + "result is copied back)%n", small[0], large[0]);
        PrintStream out = System.out;
        ByteArrayOutputStream said = new ByteArrayOutputStream();
        System.setOut(new PrintStream(said, true, StandardCharsets.UTF_8));
        try {
            t.put(large);
            t.get(large);
        } finally {
            System.setOut(out);
        }
        System.out.println("put/get of the bound interface print: " + said.toString(StandardCharsets.UTF_8).trim()
                .replace('\n', '|'));
        t.dispose();
        System.out.println("load: " + LoadAverage.line());
        System.out.printf(Locale.ROOT, "RESULT binding mib=%d small_ms=%.3f large_ms=%.3f gb_s=%.2f ratio=%.1f%n", mib,
                smallMs, largeMs, 2.0 * large.length * 4 / (largeMs / 1e3) / 1e9, largeMs / smallMs);
    }

    static double time(Touch t, Range r, float[] x) {
        t.touch(r, x); // creates the buffer
        double best = Double.MAX_VALUE;
        for (int i = 0; i < 5; i++) {
            long t0 = System.nanoTime();
            t.touch(r, x);
            best = Math.min(best, (System.nanoTime() - t0) / 1e6);
        }
        return best;
    }
}
