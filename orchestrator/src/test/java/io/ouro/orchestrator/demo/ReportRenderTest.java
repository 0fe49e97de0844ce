package io.ouro.orchestrator.demo;

import io.ouro.orchestrator.train.StepMetrics;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The demo's HTML report as a real browser draws it: headless Chromium renders a report of two stages (T = 2, then 4)
 * to a PNG, and the picture holds each loop step's series in its legend colour, the stacked exit areas, and the dark
 * ink of axes, ticks and labels. Runs where a headless Chromium is installed ({@code chromium-headless-shell} or
 * {@code chromium}, Debian packages of about 95-112 MB; {@code .ci/run} installs the first); skipped elsewhere.
 */
class ReportRenderTest {

    @TempDir
    Path tmp;

    static String browser() {
        for (String b : new String[] {"/usr/bin/chromium-headless-shell", "/usr/lib/chromium/chromium-headless-shell",
                "/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
            if (Files.isExecutable(Path.of(b))) {
                return b;
            }
        }
        return null;
    }

    static DemoReport.Facts facts() {
        List<StepMetrics> steps = new ArrayList<>();
        List<String> stage = new ArrayList<>();
        for (int s = 0; s < 120; s++) {
            int t = s < 60 ? 2 : 4;
            double[] ce = new double[t], exit = new double[t];
            for (int i = 0; i < t; i++) {
                ce[i] = 2.0 * Math.exp(-s / 50.0) + 0.5 - 0.05 * i;
                exit[i] = 1.0 / t;
            }
            steps.add(new StepMetrics(s, ce[t - 1], ce, exit, 1.0, 3e-3, 256, 100, 90, 5, 0, 0, Double.NaN, 0, Double.NaN, null, null));
            stage.add(t == 2 ? "a" : "b");
        }
        List<double[][]> val = List.of(new double[][] {{60}, {1.3, 1.2}, {0.5, 0.5}},
                new double[][] {{120}, {0.9, 0.85, 0.8, 0.78}, {0.25, 0.25, 0.25, 0.25}});
        return new DemoReport.Facts("java", "test", 1000, 268, 10_000, 0.1, steps, stage, val, null, 10, 100,
                "file:/x/checkpoints", "file:/x", 20, null, true);
    }

    @Test
    @Timeout(120)
    void theChartsAreDrawnWithTheirSeriesLegendsAndAxes() throws Exception {
        String chromium = browser();
        Assumptions.assumeTrue(chromium != null, "no headless Chromium installed here");
        Path html = tmp.resolve("report.html");
        Files.writeString(html, DemoReport.html(facts()));
        Path png = tmp.resolve("report.png");
        Process p = new ProcessBuilder(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--window-size=1000,1100", "--screenshot=" + png, html.toUri().toString())
                .redirectErrorStream(true).redirectOutput(tmp.resolve("chromium.log").toFile()).start();
        assertTrue(p.waitFor(90, TimeUnit.SECONDS), "chromium finished");
        assertEquals(0, p.exitValue(), Files.readString(tmp.resolve("chromium.log")));
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(1000, img.getWidth());
        // the four series colours (loop steps 1..4 and exit steps 1..4) and the dark ink of axes and labels
        int[] colours = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728};
        int[] line = new int[colours.length], area = new int[colours.length];
        int dark = 0;
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                int rgb = img.getRGB(x, y) & 0xffffff;
                for (int c = 0; c < colours.length; c++) {
                    line[c] += near(rgb, colours[c], 24) ? 1 : 0;
                    area[c] += near(rgb, overWhite(colours[c], 0.75), 12) ? 1 : 0; // the exit areas' fill-opacity
                }
                dark += (rgb >> 16 & 0xff) < 90 && (rgb >> 8 & 0xff) < 90 && (rgb & 0xff) < 90 ? 1 : 0;
            }
        }
        for (int c = 0; c < colours.length; c++) {
            // the CE line and the two legend squares (12 x 12 each) of a loop step; its stacked exit area
            assertTrue(line[c] > 300, String.format("loop step %d's colour #%06x: %d pixels", c + 1, colours[c], line[c]));
            assertTrue(area[c] > 2000, String.format("exit step %d's area: %d pixels", c + 1, area[c]));
        }
        assertTrue(dark > 2000, "axes, ticks and labels: " + dark + " dark pixels");
    }

    static int overWhite(int rgb, double alpha) {
        int r = (int) Math.round((rgb >> 16 & 0xff) * alpha + 255 * (1 - alpha));
        int g = (int) Math.round((rgb >> 8 & 0xff) * alpha + 255 * (1 - alpha));
        int b = (int) Math.round((rgb & 0xff) * alpha + 255 * (1 - alpha));
        return r << 16 | g << 8 | b;
    }

    static boolean near(int rgb, int want, int tol) {
        return Math.abs((rgb >> 16 & 0xff) - (want >> 16 & 0xff)) <= tol
                && Math.abs((rgb >> 8 & 0xff) - (want >> 8 & 0xff)) <= tol
                && Math.abs((rgb & 0xff) - (want & 0xff)) <= tol;
    }
}
