package io.ouro.orchestrator.deploy;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Keeps the README and docs/ true of the tree: every relative link resolves to a file, and every
 * {@code deploy/bin/ouro <subcommand>} they show is one the launcher dispatches (its {@code case} is the one list).
 */
class DocsLinkTest {

    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    private static final Pattern LINK = Pattern.compile("\\[[^\\]]*]\\(([^)\\s]+)(?:\\s+\"[^\"]*\")?\\)");
    private static final Pattern FENCE = Pattern.compile("(?ms)^\\s*```.*?^\\s*```\\s*$");
    private static final Pattern CODE_SPAN = Pattern.compile("`[^`\\n]*`");
    private static final Pattern OURO = Pattern.compile("deploy/bin/ouro[ \\t]+([a-z][a-z-]*)");
    private static final Pattern CASE_ARM = Pattern.compile("^  (\\S[^)]*)\\)");

    @Test
    void everyRelativeLinkInTheReadmeAndDocsResolvesToAFile() throws IOException {
        List<String> broken = new ArrayList<>();
        int checked = 0;
        for (Path md : markdownFiles()) {
            String text = CODE_SPAN.matcher(FENCE.matcher(Files.readString(md)).replaceAll("")).replaceAll("");
            Matcher m = LINK.matcher(text);
            while (m.find()) {
                String target = m.group(1);
                if (target.startsWith("http://") || target.startsWith("https://") || target.startsWith("mailto:")
                        || target.startsWith("#")) {
                    continue;
                }
                int hash = target.indexOf('#');
                String file = hash >= 0 ? target.substring(0, hash) : target;
                checked++;
                if (!Files.exists(md.getParent().resolve(file).normalize())) {
                    broken.add(ROOT.relativize(md) + ": " + target);
                }
            }
        }
        assertTrue(checked >= 10, "links were found in README.md and docs/ (" + checked + ")");
        assertEquals(List.of(), broken, "relative links whose file does not exist");
    }

    @Test
    void everyOuroSubcommandTheReadmeAndDocsShowIsOneTheLauncherDispatches() throws IOException {
        Set<String> known = launcherSubcommands();
        assertTrue(known.containsAll(List.of("demo", "train", "tokenize", "eval", "export")),
                "the launcher's case arms were parsed: " + known);
        Set<String> shown = new TreeSet<>();
        List<String> unknown = new ArrayList<>();
        for (Path md : markdownFiles()) {
            Matcher m = OURO.matcher(Files.readString(md));
            while (m.find()) {
                shown.add(m.group(1));
                if (!known.contains(m.group(1))) {
                    unknown.add(ROOT.relativize(md) + ": deploy/bin/ouro " + m.group(1));
                }
            }
        }
        assertTrue(shown.contains("demo"), "the README shows the demo command");
        assertEquals(List.of(), unknown, "subcommands deploy/bin/ouro does not have (it has " + known + ")");
    }

    @Test
    void theReadmesTestCommandNamesAScriptThatExists() throws IOException {
        Matcher m = Pattern.compile("(?m)^bash (\\S+)$").matcher(Files.readString(ROOT.resolve("README.md")));
        assertTrue(m.find(), "the README shows the test command");
        assertTrue(Files.isRegularFile(ROOT.resolve(m.group(1))), m.group(1));
    }

    /** The arms of the launcher's {@code case "$cmd" in ... esac}, split at {@code |}, without {@code *} and options. */
    static Set<String> launcherSubcommands() throws IOException {
        List<String> lines = Files.readAllLines(ROOT.resolve("deploy/bin/ouro"));
        int start = lines.indexOf("case \"$cmd\" in");
        assertTrue(start >= 0, "deploy/bin/ouro dispatches with case \"$cmd\" in");
        Set<String> names = new TreeSet<>();
        for (String line : lines.subList(start + 1, lines.size())) {
            if (line.equals("esac")) {
                break;
            }
            Matcher m = CASE_ARM.matcher(line);
            if (m.find()) {
                for (String alt : m.group(1).split("\\|")) {
                    String name = alt.trim();
                    if (!name.equals("*") && !name.startsWith("-")) {
                        names.add(name);
                    }
                }
            }
        }
        assertFalse(names.isEmpty(), "no subcommands parsed from deploy/bin/ouro");
        return names;
    }

    static List<Path> markdownFiles() throws IOException {
        List<Path> files = new ArrayList<>();
        files.add(ROOT.resolve("README.md"));
        try (Stream<Path> s = Files.walk(ROOT.resolve("docs"))) {
            s.filter(p -> p.toString().endsWith(".md")).sorted().forEach(files::add);
        }
        return files;
    }
}
