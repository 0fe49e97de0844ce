package io.ouro.orchestrator.deploy;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packages form the stack that docs/architecture.md ("Layers") states: a package refers only to packages in
 * layers below its own, never to one above it or beside it in its layer, and a module only to modules below it;
 * orchestrator's {@code config}, which the driver reads before any device is chosen, refers to no device code. The
 * scan reads the main sources' imports and fully qualified names (comments and string literals aside).
 */
class ImportLayersTest {

    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    static final List<String> SOURCES = List.of("worker/src/main/java", "tokenizer/src/main/java",
            "orchestrator/src/main/java");

    /** Modules bottom first: worker and tokenizer know nothing of each other; orchestrator drives both. */
    static final List<List<String>> MODULES = List.of(
            List.of("io.ouro.worker", "io.ouro.tokenizer"),
            List.of("io.ouro.orchestrator"));

    /** Each module's packages (relative to the module's, "" for its own) bottom first. */
    static final Map<String, List<List<String>>> PACKAGES = Map.of(
            "io.ouro.worker", List.of(
                    List.of("util"),
                    List.of("model"),
                    List.of("step"),
                    List.of("reference"),
                    List.of("infer", "data", "comm", "hf"),
                    List.of("opencl"),
                    List.of("backend")),
            "io.ouro.tokenizer", List.of(
                    List.of("cli", "fs"),
                    List.of("", "shard"),
                    List.of("job")),
            "io.ouro.orchestrator", List.of(
                    List.of("fs"),
                    List.of("config"),
                    List.of("checkpoint"),
                    List.of("train"),
                    List.of("hf"),
                    List.of("eval"),
                    List.of(""),
                    List.of("demo")));

    /** Packages a package may not refer to although they are below it. */
    static final Map<String, List<String>> FORBIDDEN = Map.of(
            "io.ouro.orchestrator.config", List.of("io.ouro.worker.opencl", "io.ouro.worker.backend"));

    // comments, text blocks, strings and chars: skipped, in one pass so that each hides what lies inside it
    private static final Pattern NOT_CODE = Pattern.compile(
            "//[^\\n]*|/\\*.*?\\*/|\"\"\"(?s:.*?)\"\"\"|\"(?:\\\\.|[^\"\\\\\\n])*\"|'(?:\\\\.|[^'\\\\\\n])*'",
            Pattern.DOTALL);
    private static final Pattern PACKAGE = Pattern.compile("^\\s*package\\s+([\\w.]+)\\s*;", Pattern.MULTILINE);
    // a package name, then the class it names if any
    private static final Pattern REFERENCE = Pattern.compile(
            "(?<![\\w.])(io\\.ouro(?:\\.[a-z_][a-zA-Z0-9_]*)*)(\\.[A-Z]\\w*)?");

    /** A reference from a file of one package to another package, as written ({@code import ...} or a name). */
    record Reference(String from, String to, String text) {
    }

    @Test
    void workerPackagesReferOnlyToPackagesBelowThem() throws IOException {
        assertNone(violations("io.ouro.worker"));
    }

    @Test
    void tokenizerPackagesReferOnlyToPackagesBelowThem() throws IOException {
        assertNone(violations("io.ouro.tokenizer"));
    }

    @Test
    void orchestratorPackagesReferOnlyToPackagesBelowThemAndConfigToNoDeviceCode() throws IOException {
        assertNone(violations("io.ouro.orchestrator"));
    }

    @Test
    void theRulesRejectAReferenceUpwardsSidewaysOrIntoDeviceCode() {
        assertNull(violation("io.ouro.worker.hf", "io.ouro.worker.model"));
        assertNull(violation("io.ouro.worker.backend", "io.ouro.worker.util"));
        assertNull(violation("io.ouro.orchestrator.train", "io.ouro.worker.opencl"));
        assertNull(violation("io.ouro.orchestrator.config", "io.ouro.worker.model"));
        assertNull(violation("io.ouro.tokenizer.job", "io.ouro.tokenizer"));
        assertNotNull(violation("io.ouro.worker.model", "io.ouro.worker.hf"), "upwards");
        assertNotNull(violation("io.ouro.worker.step", "io.ouro.worker.reference"), "upwards");
        assertNotNull(violation("io.ouro.worker.data", "io.ouro.worker.comm"), "sideways");
        assertNotNull(violation("io.ouro.worker.model", "io.ouro.orchestrator.train"), "into a higher module");
        assertNotNull(violation("io.ouro.tokenizer.job", "io.ouro.worker.util"), "into a module beside it");
        assertNotNull(violation("io.ouro.orchestrator.train", "io.ouro.orchestrator.hf"), "upwards");
        assertNotNull(violation("io.ouro.orchestrator.config", "io.ouro.worker.opencl"), "device code");
        assertNotNull(violation("io.ouro.orchestrator.config", "io.ouro.worker.backend"), "device code");
        assertNotNull(violation("io.ouro.worker.newthing", "io.ouro.worker.util"), "a package not in the stack");
        assertNotNull(violation("io.ouro.worker.model", "io.ouro.worker.newthing"), "a package not in the stack");
    }

    @Test
    void theScanFindsImportsAndQualifiedNamesButNotCommentsOrStrings() {
        String source = """
                package io.ouro.worker.model;

                import io.ouro.worker.hf.Safetensors;
                import static io.ouro.worker.step.StepOps.X;
                import io.ouro.worker.util.*;

                /** {@link io.ouro.worker.backend.Backends} */
                final class A {
                    // io.ouro.worker.infer.Decoder
                    io.ouro.worker.opencl.OpenClModel m;
                    String s = "io.ouro.worker.comm.RingAllReduce";
                }
                """;
        List<Reference> refs = references(source);
        assertEquals(List.of("io.ouro.worker.hf", "io.ouro.worker.step", "io.ouro.worker.util",
                "io.ouro.worker.opencl"), refs.stream().map(Reference::to).toList());
        assertEquals(List.of("io.ouro.worker.hf.Safetensors", "io.ouro.worker.step.StepOps",
                "io.ouro.worker.opencl.OpenClModel"), refs.stream().filter(r -> violation(r.from(), r.to()) != null)
                .map(Reference::text).toList());
    }

    private static void assertNone(List<String> violations) {
        assertTrue(violations.isEmpty(), "references against the stack (docs/architecture.md, Layers):\n"
                + String.join("\n", violations));
    }

    /** "file: reference (why)" for every reference against the rules from a file of {@code module}. */
    static List<String> violations(String module) throws IOException {
        List<String> found = new ArrayList<>();
        int files = 0;
        for (String dir : SOURCES) {
            List<Path> java;
            try (Stream<Path> s = Files.walk(ROOT.resolve(dir))) {
                java = s.filter(p -> p.toString().endsWith(".java")).sorted().toList();
            }
            for (Path file : java) {
                String source = Files.readString(file);
                Matcher pm = PACKAGE.matcher(source);
                assertTrue(pm.find(), file + " declares its package");
                String pkg = pm.group(1);
                if (!moduleOf(pkg).equals(module)) {
                    continue;
                }
                files++;
                String name = ROOT.relativize(file).toString();
                if (layerOf(pkg) < 0) {
                    found.add(name + ": package " + pkg + " is in no layer of the stack");
                }
                for (Reference r : references(source)) {
                    String why = violation(r.from(), r.to());
                    if (why != null) {
                        found.add(name + ": " + r.text() + " (" + why + ")");
                    }
                }
            }
        }
        assertTrue(files >= 5, "the scan read " + files + " files of " + module + " under " + ROOT);
        return found;
    }

    /** The references of one source file to packages other than its own, in order, each once. */
    static List<Reference> references(String source) {
        Matcher pm = PACKAGE.matcher(source);
        String pkg = pm.find() ? pm.group(1) : "";
        String code = NOT_CODE.matcher(source).replaceAll(" ");
        code = PACKAGE.matcher(code).replaceFirst("");
        List<Reference> refs = new ArrayList<>();
        TreeSet<String> seen = new TreeSet<>();
        Matcher m = REFERENCE.matcher(code);
        while (m.find()) {
            String to = m.group(1);
            String text = m.group(2) == null ? to : to + m.group(2);
            if (!to.equals(pkg) && seen.add(text)) {
                refs.add(new Reference(pkg, to, text));
            }
        }
        return refs;
    }

    /** Why a file of package {@code from} may not refer to package {@code to}; null when it may. */
    static String violation(String from, String to) {
        if (from.equals(to)) {
            return null;
        }
        for (String banned : FORBIDDEN.getOrDefault(from, List.of())) {
            if (to.equals(banned) || to.startsWith(banned + ".")) {
                return from + " may not refer to device code";
            }
        }
        String mf = moduleOf(from), mt = moduleOf(to);
        if (mf.isEmpty() || mt.isEmpty()) {
            return "not a package of worker, tokenizer or orchestrator";
        }
        int lf = layerOf(from), lt = layerOf(to);
        if (lf < 0 || lt < 0) {
            return (lf < 0 ? from : to) + " is in no layer of the stack";
        }
        if (!mf.equals(mt)) {
            return moduleLevel(mt) < moduleLevel(mf) ? null : "module " + mt + " is not below " + mf;
        }
        if (lt < lf) {
            return null;
        }
        return to + (lt == lf ? " is beside " : " is above ") + from + " in " + layerNames(mf);
    }

    // the module a package belongs to, "" when none
    static String moduleOf(String pkg) {
        return MODULES.stream().flatMap(List::stream)
                .filter(m -> pkg.equals(m) || pkg.startsWith(m + "."))
                .findFirst().orElse("");
    }

    static int moduleLevel(String module) {
        for (int i = 0; i < MODULES.size(); i++) {
            if (MODULES.get(i).contains(module)) {
                return i;
            }
        }
        return -1;
    }

    // the layer of a package within its module, -1 when it is in none
    static int layerOf(String pkg) {
        String module = moduleOf(pkg);
        if (module.isEmpty()) {
            return -1;
        }
        String sub = pkg.equals(module) ? "" : pkg.substring(module.length() + 1);
        List<List<String>> layers = PACKAGES.get(module);
        for (int i = 0; i < layers.size(); i++) {
            if (layers.get(i).contains(sub)) {
                return i;
            }
        }
        return -1;
    }

    private static String layerNames(String module) {
        return PACKAGES.get(module).stream()
                .map(l -> l.stream().map(s -> s.isEmpty() ? "(root)" : s).collect(Collectors.joining(", ")))
                .collect(Collectors.joining(" < ", module + " [", "]"));
    }
}
