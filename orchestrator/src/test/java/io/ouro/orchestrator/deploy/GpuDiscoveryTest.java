package io.ouro.orchestrator.deploy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** deploy/gpu-discovery.sh prints Spark's resource JSON from nvidia-smi, else from clinfo, else nothing. */
class GpuDiscoveryTest {

    @TempDir
    Path tmp;

    static final Path SCRIPT = Path.of("..", "deploy", "gpu-discovery.sh").toAbsolutePath().normalize();

    String run(Path bin) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("/bin/bash", SCRIPT.toString());
        pb.environment().clear();
        pb.environment().put("PATH", bin.toString());
        pb.redirectErrorStream(true);
        Process p = pb.start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the script finishes");
        assertEquals(0, p.exitValue());
        return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    }

    Path fake(String name, String output) throws IOException {
        Path bin = Files.createDirectories(tmp.resolve("bin-" + name + "-" + output.hashCode()));
        Path f = bin.resolve(name);
        // only bash builtins: PATH holds nothing but this fake
        Files.writeString(f, "#!/bin/bash\nwhile IFS= read -r l; do printf '%s\\n' \"$l\"; done <<'OUT'\n" + output
                + "\nOUT\n");
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rwxr-xr-x"));
        return bin;
    }

    @Test
    void nvidiaGpusFromNvidiaSmi() throws Exception {
        assertEquals("{\"name\": \"gpu\", \"addresses\": [\"0\",\"1\",\"2\",\"3\"]}", run(fake("nvidia-smi", "0\n1\n2\n3")));
    }

    @Test
    void openClGpusFromClinfoWhenThereIsNoNvidiaSmi() throws Exception {
        String clinfo = """
                Number of platforms                               2
                  Platform Name                                   NVIDIA CUDA
                Number of devices                                 2
                  Device Name                                     NVIDIA H200
                  Device Type                                     GPU
                  Device Name                                     NVIDIA H200
                  Device Type                                     GPU
                  Platform Name                                   Portable Computing Language
                Number of devices                                 1
                  Device Name                                     pthread-skylake-avx512
                  Device Type                                     CPU""";
        assertEquals("{\"name\": \"gpu\", \"addresses\": [\"0\",\"1\"]}", run(fake("clinfo", clinfo)));
    }

    @Test
    void noGpuGivesAnEmptyList() throws Exception {
        assertEquals("{\"name\": \"gpu\", \"addresses\": []}", run(Files.createDirectories(tmp.resolve("empty"))));
        assertEquals("{\"name\": \"gpu\", \"addresses\": []}",
                run(fake("clinfo", "  Device Name   pocl\n  Device Type   CPU")));
    }
}
