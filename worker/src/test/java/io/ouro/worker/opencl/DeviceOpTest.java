package io.ouro.worker.opencl;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each device op's code and name exist once, in {@link DeviceOp}: the program's {@code #define}s of the hand-written
 * ops are generated from it, no {@code .cl} file defines one itself, and every op the dispatch reaches has a code.
 * Needs no device: it reads the program as installed (Aparapi's translation plus the hand-written source).
 */
class DeviceOpTest {

    private static final String[] CL = {"buffers.cl", "gemm.cl", "decode.cl", "bf16.cl", "gemm_tc.cl", "xent.cl",
            "hand.cl"};

    @Test
    void everyOpHasItsOwnCodeAndProfileName() {
        Set<Long> codes = new HashSet<>();
        Set<String> names = new HashSet<>();
        for (DeviceOp op : DeviceOp.values()) {
            assertTrue(codes.add((long) op.code << 32 | op.hand), op + " shares its code with another op");
            assertTrue(names.add(op.profileName()), op + " shares its profile name with another op");
            assertEquals(op, DeviceOp.of(op.code, op.hand), "the kernel's fields select " + op);
            assertEquals(op.handWritten(), op.code == DeviceOp.Code.HAND || op.code == DeviceOp.Code.PHASES,
                    op + ": hand-written ops, and only they, run under HAND or PHASES");
        }
        assertFalse(names.contains(DeviceOp.TC_EMULATED_NAME), "the emulated tensor-core GEMM has a name of its own");
    }

    @Test
    void theProgramDefinesEachHandWrittenOpOnceFromJava() {
        String program = ClKernels.source();
        for (DeviceOp op : DeviceOp.values()) {
            if (!op.handWritten()) {
                continue;
            }
            Matcher m = Pattern.compile("(?m)^#define " + op.define() + " (\\d+)$").matcher(program);
            assertTrue(m.find(), "the program defines " + op.define());
            assertEquals(op.hand, Integer.parseInt(m.group(1)), op.define() + " is " + op + "'s id");
            assertFalse(m.find(), op.define() + " is defined once");
            assertTrue(program.contains(op.define() + ")"), op.define() + " is dispatched on by hand.cl");
        }
    }

    @Test
    void noClFileDefinesWhatJavaDefines() throws IOException {
        Set<String> generated = new HashSet<>();
        Matcher d = Pattern.compile("(?m)^#define (\\w+) ").matcher(ClKernels.constants());
        while (d.find()) {
            generated.add(d.group(1));
        }
        assertTrue(generated.contains("OURO_GEMM_OUTER") && generated.contains("OURO_LT"), "constants() generates");
        for (String file : CL) {
            String text = resource(file);
            Matcher m = Pattern.compile("(?m)^#define (\\w+)").matcher(text);
            while (m.find()) {
                assertFalse(generated.contains(m.group(1)), file + " defines " + m.group(1) + ", which Java defines");
            }
        }
    }

    @Test
    void theDispatchCallsEveryTranslatedOpsBody() {
        String program = ClKernels.source();
        for (DeviceOp op : DeviceOp.values()) {
            if (op.handWritten() || op == DeviceOp.GEMM) {
                continue;
            }
            assertTrue(program.contains("this->op==" + op.code + ")"), "run() dispatches on " + op + "'s code");
        }
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = ClKernels.class.getResourceAsStream(name)) {
            assertTrue(in != null, name + " is on the classpath");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
