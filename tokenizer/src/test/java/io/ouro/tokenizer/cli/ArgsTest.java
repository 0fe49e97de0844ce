package io.ouro.tokenizer.cli;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ArgsTest {

    static final String USAGE = "ouro tool (--model DIR | --config FILE [--checkpoint DIR]) --out URI [--workers W]"
            + " [--verify] [--dtype bf16|fp32] [--dry-run]";

    @Test
    void theUsageDeclaresOptionsAndSwitches() {
        assertEquals(Map.of("model", true, "config", true, "checkpoint", true, "out", true, "workers", true,
                "verify", false, "dtype", true, "dry-run", false), Args.flags(USAGE));
    }

    @Test
    void parsesOptionsSwitchesAndPositionals() {
        Args a = Args.parse(new String[] {"mano", "--out", "/tmp/x", "--verify", "--workers", "4"}, USAGE, 1);
        assertEquals("/tmp/x", a.required("out"));
        assertTrue(a.has("verify"));
        assertFalse(a.has("dry-run"));
        assertEquals(4, a.integer("workers", 1));
        assertEquals("bf16", a.get("dtype", "bf16"));
        assertEquals(List.of("mano"), a.positional());
        assertFalse(a.help());
        assertTrue(Args.parse(new String[] {"-h"}, USAGE).help());
    }

    @Test
    void errorsNameTheFlagAndShowTheUsage() {
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> Args.parse(new String[] {"--out", "x", "--wokers", "2"}, USAGE));
        assertEquals("unknown option --wokers\nusage: " + USAGE, unknown.getMessage());
        IllegalArgumentException noValue = assertThrows(IllegalArgumentException.class,
                () -> Args.parse(new String[] {"--out"}, USAGE));
        assertEquals("--out: expected a value\nusage: " + USAGE, noValue.getMessage());
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> Args.parse(new String[] {"--verify"}, USAGE).required("out"));
        assertEquals("--out is required\nusage: " + USAGE, missing.getMessage());
        IllegalArgumentException stray = assertThrows(IllegalArgumentException.class,
                () -> Args.parse(new String[] {"mano"}, USAGE));
        assertEquals("unexpected argument 'mano'\nusage: " + USAGE, stray.getMessage());
        IllegalArgumentException notANumber = assertThrows(IllegalArgumentException.class,
                () -> Args.parse(new String[] {"--workers", "four"}, USAGE).integer("workers", 1));
        assertEquals("--workers: expected an integer, got 'four'\nusage: " + USAGE, notANumber.getMessage());
    }
}
