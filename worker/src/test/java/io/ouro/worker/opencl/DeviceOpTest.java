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
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
    void everyOpHasAFamilyThatItsProfileEntriesMapTo() {
        for (DeviceOp op : DeviceOp.values()) {
            assertNotNull(op.family(), op + " has no family");
            assertEquals(op.family(), DeviceOp.familyOf(op.profileName()), op + "'s profile entry maps to its family");
        }
        assertEquals(DeviceOp.Family.GEMM, DeviceOp.familyOf(DeviceOp.TC_EMULATED_NAME));
        // a profile by shape names each GEMM with its shape after the name
        assertEquals(DeviceOp.Family.GEMM, DeviceOp.familyOf(DeviceOp.CL_GEMM_OUTER.profileName() + " 8x8x8 a8,1 b8,1"));
        assertEquals(DeviceOp.Family.GEMM, DeviceOp.familyOf(DeviceOp.TC_EMULATED_NAME + " 8x8x8 a8,1 b8,1"));
        assertEquals(DeviceOp.Family.ATTENTION, DeviceOp.familyOf(DeviceOp.CL_FLASH_BWD_KV.profileName()));
        assertEquals(DeviceOp.Family.OPTIMIZER, DeviceOp.familyOf(DeviceOp.ADAMW.profileName()));
        assertEquals(DeviceOp.Family.DECODE, DeviceOp.familyOf(DeviceOp.CL_DECODE_STEP.profileName()));
        assertThrows(IllegalArgumentException.class, () -> DeviceOp.familyOf("no such op"));
        // only a GEMM's entry carries a shape: another op's name with something after it is no entry
        assertThrows(IllegalArgumentException.class, () -> DeviceOp.familyOf(DeviceOp.ADAMW.profileName() + " 8x8x8"));
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

    /**
     * {@link DeviceOp#localTiles()} is what the program says: the hand-written ops whose function (or anything it
     * calls) names {@code tileA}/{@code tileB}, plus the translated GEMM, whose barrier loop in {@code run()} stages
     * its tiles there; no other translated op's body touches them. An op that used the tiles without being in the
     * set would be launched with one-float tiles and write past them, so this check is what keeps it safe.
     */
    @Test
    void theOpsLaunchedWithLocalTilesAreTheOpsThatUseThem() {
        String program = ClKernels.source().replaceAll("(?s)/\\*.*?\\*/", "").replaceAll("//[^\\n]*", "");
        java.util.Map<String, String> bodies = new java.util.LinkedHashMap<>();
        Matcher f = Pattern.compile("(?m)^(?:__kernel\\s+)?[A-Za-z_][\\w \\t\\*]*?\\b(\\w+)\\s*\\(").matcher(program);
        while (f.find()) {
            int open = program.indexOf('{', f.end()), semi = program.indexOf(';', f.end());
            if (open < 0 || (semi >= 0 && semi < open)) {
                continue; // a declaration, not a definition
            }
            int depth = 0, end = open;
            for (; end < program.length(); end++) {
                char c = program.charAt(end);
                depth += c == '{' ? 1 : c == '}' ? -1 : 0;
                if (depth == 0) {
                    break;
                }
            }
            bodies.put(f.group(1), program.substring(open, end + 1));
        }
        assertTrue(bodies.containsKey("ouro_hand") && bodies.containsKey("run") && bodies.containsKey("ouro_flash_fwd"),
                "the scan finds the program's functions: " + bodies.keySet());
        Set<String> touching = new HashSet<>();
        for (boolean grew = true; grew; ) {
            grew = false;
            for (var e : bodies.entrySet()) {
                if (touching.contains(e.getKey()) || e.getKey().equals("run")) {
                    continue;
                }
                boolean uses = e.getValue().contains("tileA") || e.getValue().contains("tileB");
                for (String callee : touching) {
                    uses |= Pattern.compile("\\b" + callee + "\\s*\\(").matcher(e.getValue()).find();
                }
                if (uses) {
                    touching.add(e.getKey());
                    grew = true;
                }
            }
        }
        Set<DeviceOp> derived = new HashSet<>();
        Matcher d = Pattern.compile("this->hand == (OURO_\\w+)\\)\\s*\\{\\s*(\\w+)\\(").matcher(
                bodies.get("ouro_hand") + bodies.getOrDefault("ouro_phase", ""));
        int dispatched = 0;
        while (d.find()) {
            dispatched++;
            if (touching.contains(d.group(2))) {
                DeviceOp op = null;
                for (DeviceOp o : DeviceOp.values()) {
                    if (o.handWritten() && o.define().equals(d.group(1))) {
                        op = o;
                    }
                }
                assertTrue(op != null, d.group(1) + " is a DeviceOp");
                derived.add(op);
            }
        }
        assertTrue(dispatched >= 20, "the scan reads the hand-written dispatch (" + dispatched + " ops)");
        for (String fn : touching) {
            // the marker methods ClKernels splices the hand-written dispatch into reach the tiles through it
            assertTrue(fn.startsWith("ouro_") || fn.endsWith("__handWritten") || fn.endsWith("__handPhase"), fn + ", a translated function, touches the tiles: only run()'s GEMM may");
        }
        String run = bodies.get("run");
        assertTrue(run.contains("this->tileA[") && run.contains("this->tileB["), "run()'s GEMM barrier loop stages tiles");
        derived.add(DeviceOp.GEMM);
        Set<DeviceOp> declared = new HashSet<>();
        for (DeviceOp op : DeviceOp.values()) {
            if (op.localTiles()) {
                declared.add(op);
            }
        }
        assertEquals(new java.util.TreeSet<>(derived), new java.util.TreeSet<>(declared),
                "DeviceOp.localTiles() against the ops whose code uses the tiles");
        assertTrue(touching.contains("ouro_ce_fwd_wg") && !touching.contains("ouro_ce_bwd_wg"), "scan: " + touching);
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = ClKernels.class.getResourceAsStream(name)) {
            assertTrue(in != null, name + " is on the classpath");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
