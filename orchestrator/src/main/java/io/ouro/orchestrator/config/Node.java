package io.ouro.orchestrator.config;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * A YAML mapping being read into a record: typed getters that name the file and the dotted field path in
 * every error, and a check that no unknown field is left (a typo is an error, not a silent default).
 */
public final class Node {

    private final String file;
    private final String path;
    private final JsonNode node;
    private final Set<String> read = new java.util.HashSet<>();

    public Node(String file, String path, JsonNode node) {
        this.file = file;
        this.path = path;
        this.node = node;
        if (node != null && !node.isObject()) {
            throw error(path.isEmpty() ? "(top level)" : path, "a mapping", node);
        }
    }

    private String field(String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    public ConfigException error(String field, String expected, JsonNode got) {
        return new ConfigException(file + ": " + field + ": expected " + expected + ", got "
                + (got == null || got.isMissingNode() ? "nothing" : "'" + got + "'"));
    }

    public ConfigException error(String key, String message) {
        return new ConfigException(file + ": " + field(key) + ": " + message);
    }

    public boolean has(String key) {
        return node != null && node.has(key) && !node.get(key).isNull();
    }

    private JsonNode get(String key) {
        read.add(key);
        return node == null ? null : node.get(key);
    }

    public Node child(String key) {
        JsonNode v = get(key);
        return new Node(file, field(key), v == null || v.isNull() ? null : v);
    }

    public List<Node> list(String key) {
        JsonNode v = get(key);
        List<Node> out = new ArrayList<>();
        if (v == null || v.isNull()) {
            return out;
        }
        if (!v.isArray()) {
            throw error(field(key), "a list", v);
        }
        for (int i = 0; i < v.size(); i++) {
            out.add(new Node(file, field(key) + "[" + i + "]", v.get(i)));
        }
        return out;
    }

    /** A list of integers in [min, max]; empty when absent. */
    public List<Long> integers(String key, long min, long max) {
        JsonNode v = get(key);
        List<Long> out = new ArrayList<>();
        if (v == null || v.isNull()) {
            return out;
        }
        if (!v.isArray()) {
            throw error(field(key), "a list of integers", v);
        }
        for (int i = 0; i < v.size(); i++) {
            JsonNode x = v.get(i);
            if (!x.isIntegralNumber() || x.asLong() < min || x.asLong() > max) {
                throw error(field(key) + "[" + i + "]", "an integer in [" + min + ", " + max + "]", x);
            }
            out.add(x.asLong());
        }
        return out;
    }

    public String string(String key, String dflt) {
        JsonNode v = get(key);
        if (v == null || v.isNull()) {
            if (dflt == null) {
                throw error(field(key), "a value (required)", v);
            }
            return dflt;
        }
        if (!v.isValueNode()) {
            throw error(field(key), "a string", v);
        }
        return v.asText();
    }

    public long integer(String key, Long dflt, long min, long max) {
        JsonNode v = get(key);
        if (v == null || v.isNull()) {
            if (dflt == null) {
                throw error(field(key), "an integer (required)", v);
            }
            return dflt;
        }
        long x;
        if (v.isIntegralNumber()) {
            x = v.asLong();
        } else if (v.isTextual() && v.asText().matches("[0-9_]+")) {
            x = Long.parseLong(v.asText().replace("_", ""));
        } else if (v.isNumber() && v.asDouble() == Math.rint(v.asDouble())) {
            x = (long) v.asDouble();
        } else {
            throw error(field(key), "an integer", v);
        }
        if (x < min || x > max) {
            throw error(field(key), "an integer in [" + min + ", " + max + "]", v);
        }
        return x;
    }

    public double number(String key, Double dflt, double min, double max) {
        JsonNode v = get(key);
        if (v == null || v.isNull()) {
            if (dflt == null) {
                throw error(field(key), "a number (required)", v);
            }
            return dflt;
        }
        double x;
        if (v.isNumber()) {
            x = v.asDouble();
        } else if (v.isTextual()) {
            try {
                x = Double.parseDouble(v.asText());
            } catch (NumberFormatException e) {
                throw error(field(key), "a number", v);
            }
        } else {
            throw error(field(key), "a number", v);
        }
        if (!(x >= min && x <= max)) {
            throw error(field(key), "a number in [" + min + ", " + max + "]", v);
        }
        return x;
    }

    public boolean bool(String key, boolean dflt) {
        JsonNode v = get(key);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isBoolean()) {
            throw error(field(key), "true or false", v);
        }
        return v.asBoolean();
    }

    /** Fails on a field that no getter asked for (a typo or a field this version does not know). */
    public void noOthers() {
        if (node == null) {
            return;
        }
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!read.contains(k)) {
                throw new ConfigException(file + ": " + field(k) + ": unknown field (known here: "
                        + String.join(", ", new java.util.TreeSet<>(read)) + ")");
            }
        }
    }

    public String file() {
        return file;
    }
}
