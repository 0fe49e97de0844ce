package io.ouro.tokenizer.cli;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The command line of every {@code main}: {@code --name value} options, {@code --name} switches and positional
 * arguments, as the usage line declares them. In the usage, a flag followed by a placeholder ({@code --out DIR},
 * {@code [--workers W]}) takes a value; one followed by nothing, another flag or a closing bracket
 * ({@code [--verify]}) is a switch. An unknown flag, a missing value or a missing required flag is an
 * {@link IllegalArgumentException} naming the flag, followed by the usage.
 */
public final class Args {

    private final String usage;
    private final Map<String, String> values = new LinkedHashMap<>();
    private final List<String> positional = new ArrayList<>();
    private boolean help;

    private Args(String usage) {
        this.usage = usage;
    }

    /** {@code args} against {@code usage}, with no positional arguments. */
    public static Args parse(String[] args, String usage) {
        return parse(args, usage, 0);
    }

    /** {@code args} against {@code usage}, with at most {@code positionals} positional arguments. */
    public static Args parse(String[] args, String usage, int positionals) {
        Map<String, Boolean> flags = flags(usage);
        Args a = new Args(usage);
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("-h") || arg.equals("--help")) {
                a.help = true;
            } else if (arg.startsWith("--")) {
                String name = arg.substring(2);
                Boolean takesValue = flags.get(name);
                if (takesValue == null) {
                    throw a.error("unknown option " + arg);
                }
                if (!takesValue) {
                    a.values.put(name, "true");
                } else if (i + 1 >= args.length) {
                    throw a.error(arg + ": expected a value");
                } else {
                    a.values.put(name, args[++i]);
                }
            } else if (a.positional.size() < positionals) {
                a.positional.add(arg);
            } else {
                throw a.error("unexpected argument '" + arg + "'");
            }
        }
        return a;
    }

    /**
     * {@link #parse(String[], String, int)} for a {@code main}: {@code -h} prints the usage and exits 0, an error
     * prints its message and exits 2.
     */
    public static Args orExit(String[] args, String usage, int positionals) {
        Args a;
        try {
            a = parse(args, usage, positionals);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return null;
        }
        if (a.help) {
            System.out.println("usage: " + usage);
            System.exit(0);
        }
        return a;
    }

    /** {@link #orExit(String[], String, int)} with no positional arguments. */
    public static Args orExit(String[] args, String usage) {
        return orExit(args, usage, 0);
    }

    /** The flags {@code usage} names, each with whether it takes a value. */
    static Map<String, Boolean> flags(String usage) {
        String[] words = usage.trim().split("\\s+");
        Map<String, Boolean> flags = new HashMap<>();
        for (int i = 0; i < words.length; i++) {
            String w = words[i].replaceFirst("^[\\[(]+", "");
            if (!w.startsWith("--") || w.length() < 3) {
                continue;
            }
            boolean closed = w.endsWith("]") || w.endsWith(")");
            String name = w.substring(2).replaceFirst("[\\])|,;]+$", "");
            boolean value = !closed && i + 1 < words.length && !words[i + 1].startsWith("-")
                    && !words[i + 1].matches("^[\\[\\]()|].*");
            flags.merge(name, value, Boolean::logicalOr);
        }
        return flags;
    }

    /** Whether {@code -h} or {@code --help} was given. */
    public boolean help() {
        return help;
    }

    public String usage() {
        return usage;
    }

    /** The value of {@code --name}, or {@code dflt}. */
    public String get(String name, String dflt) {
        return values.getOrDefault(name, dflt);
    }

    /** Whether {@code --name} was given (a switch, or an option with its value). */
    public boolean has(String name) {
        return values.containsKey(name);
    }

    /** The value of {@code --name}; an error naming it when it is missing. */
    public String required(String name) {
        String v = values.get(name);
        if (v == null) {
            throw error("--" + name + " is required");
        }
        return v;
    }

    /** The integer value of the required {@code --name}. */
    public int integer(String name) {
        required(name);
        return integer(name, 0);
    }

    public int integer(String name, int dflt) {
        String v = values.get(name);
        try {
            return v == null ? dflt : Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw error("--" + name + ": expected an integer, got '" + v + "'");
        }
    }

    public long longValue(String name, long dflt) {
        String v = values.get(name);
        try {
            return v == null ? dflt : Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw error("--" + name + ": expected an integer, got '" + v + "'");
        }
    }

    public double number(String name, double dflt) {
        String v = values.get(name);
        try {
            return v == null ? dflt : Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw error("--" + name + ": expected a number, got '" + v + "'");
        }
    }

    /** The positional arguments, in order. */
    public List<String> positional() {
        return List.copyOf(positional);
    }

    /** An error with this command's usage after the message. */
    public IllegalArgumentException error(String message) {
        return new IllegalArgumentException(message + "\nusage: " + usage);
    }
}
