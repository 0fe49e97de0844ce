package io.ouro.orchestrator.hf;

import java.util.HashMap;
import java.util.Map;

/** {@code --name value} pairs of the inference tools; an unknown or incomplete flag prints the usage. */
public final class Args {

    private final Map<String, String> values = new HashMap<>();
    private final String usage;

    private Args(String usage) {
        this.usage = usage;
    }

    public static Args parse(String[] args, String usage) {
        Args a = new Args(usage);
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("unexpected argument '" + args[i] + "'\nusage: " + usage);
            }
            String key = args[i].substring(2);
            if (!usage.contains("--" + key + " ") && !usage.contains("--" + key + "]")) {
                throw new IllegalArgumentException("unknown option --" + key + "\nusage: " + usage);
            }
            a.values.put(key, args[++i]);
        }
        return a;
    }

    public String get(String key, String dflt) {
        return values.getOrDefault(key, dflt);
    }

    public String required(String key) {
        String v = values.get(key);
        if (v == null) {
            throw new IllegalArgumentException("--" + key + " is required\nusage: " + usage);
        }
        return v;
    }
}
