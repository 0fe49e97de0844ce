package io.ouro.orchestrator.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** deploy/bin/ouro and deploy/bin/ouro-submit: usage, errors, and the spark-submit lines they build. */
class LauncherTest {

    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    @TempDir
    Path tmp;

    record Out(int code, String text) {
    }

    Out run(Map<String, String> env, String... cmd) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(tmp.toFile()).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "finishes");
        return new Out(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
    }

    Out submit(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("/bin/bash", ROOT.resolve("deploy/bin/ouro-submit").toString()));
        cmd.addAll(List.of(args));
        return run(Map.of(), cmd.toArray(String[]::new));
    }

    Path props(String text) throws Exception {
        Path p = tmp.resolve("spark-defaults-" + text.hashCode() + ".conf");
        Files.writeString(p, text);
        return p;
    }

    @Test
    void theLauncherListsItsCommandsAndRefusesUnknownOnes() throws Exception {
        String ouro = ROOT.resolve("deploy/bin/ouro").toString();
        Out usage = run(Map.of(), "/bin/bash", ouro);
        assertEquals(2, usage.code());
        for (String c : List.of("ouro demo", "ouro synth mano", "ouro train", "ouro tokenize", "ouro inspect",
                "ouro train-tokenizer", "ouro plan", "ouro export", "ouro generate", "ouro eval", "ouro devices")) {
            assertTrue(usage.text().contains(c), "usage names " + c + ":\n" + usage.text());
        }
        Out bad = run(Map.of(), "/bin/bash", ouro, "trian");
        assertEquals(2, bad.code());
        assertTrue(bad.text().contains("unknown command 'trian'"), bad.text());
    }

    @Test
    void submitBuildsTheSparkSubmitLineOfEachClusterManager() throws Exception {
        String conf = props("spark.executor.cores 1\n").toString();
        Out yarn = submit("yarn", "train", "--properties-file", conf, "--jar", "/x/app.jar", "--no-plan", "--dry-run", "--",
                "--config", "hdfs:///r.yaml", "--resume", "auto");
        assertEquals(0, yarn.code(), yarn.text());
        String y = yarn.text().trim();
        assertTrue(y.startsWith("spark-submit --class io.ouro.orchestrator.PretrainApp"), y);
        assertTrue(y.contains("--properties-file " + conf), y);
        assertTrue(y.contains("--master yarn --deploy-mode cluster --files " + ROOT.resolve("deploy/gpu-discovery.sh")), y);
        assertTrue(y.contains("spark.executor.resource.gpu.discoveryScript=./gpu-discovery.sh"), y);
        assertTrue(y.contains("spark.yarn.maxAppAttempts=2"), "a lost driver is restarted and resumes: " + y);
        assertTrue(y.endsWith("/x/app.jar --config hdfs:///r.yaml --resume auto"), y);

        Out k8s = submit("k8s", "tokenize", "--properties-file", conf, "--master", "k8s://https://api:6443", "--image",
                "reg/ouro:1", "--conf", "spark.executor.instances=8", "--dry-run", "--", "--input", "hdfs:///c");
        assertEquals(0, k8s.code(), k8s.text());
        String k = k8s.text().trim();
        assertTrue(k.contains("--class io.ouro.tokenizer.job.TokenizeJob"), k);
        assertTrue(k.contains("spark.kubernetes.container.image=reg/ouro:1"), k);
        assertTrue(k.contains("spark.kubernetes.executor.podTemplateFile=" + ROOT.resolve("deploy/k8s/executor-pod-template.yaml")), k);
        assertTrue(k.contains("spark.executor.resource.gpu.vendor=nvidia.com"), k);
        assertTrue(k.contains("--conf spark.executor.instances=8"), k);
        assertTrue(k.endsWith("local:///opt/ouro/ouro-app.jar --input hdfs:///c"), "the jar inside the image: " + k);

        Out sa = submit("standalone", "train-tokenizer", "--properties-file", conf, "--master", "spark://m:7077",
                "--jar", "/x/app.jar", "--dry-run");
        assertEquals(0, sa.code(), sa.text());
        assertTrue(sa.text().contains("--class io.ouro.tokenizer.BpeTrainer"), sa.text());
        assertTrue(sa.text().contains("--master spark://m:7077 --deploy-mode client"), sa.text());
    }

    @Test
    void submitRefusesWhatCannotWork() throws Exception {
        String conf = props("spark.executor.cores 1\n").toString();
        Out noMaster = submit("standalone", "train", "--properties-file", conf, "--jar", "/x.jar", "--dry-run");
        assertEquals(2, noMaster.code());
        assertTrue(noMaster.text().contains("standalone needs --master spark://HOST:7077"), noMaster.text());
        Out noImage = submit("k8s", "train", "--properties-file", conf, "--master", "k8s://https://a:1", "--dry-run");
        assertEquals(2, noImage.code());
        assertTrue(noImage.text().contains("k8s needs --image"), noImage.text());
        Out template = submit("yarn", "train", "--properties-file",
                ROOT.resolve("deploy/conf/spark-defaults.conf.template").toString(), "--jar", "/x.jar", "--dry-run");
        assertEquals(2, template.code(), "an unfilled template is refused");
        assertTrue(template.text().contains("still holds placeholders"), template.text());
        Out mode = submit("mesos", "train");
        assertEquals(2, mode.code());
        assertTrue(mode.text().contains("unknown cluster manager 'mesos'"), mode.text());
        Out app = submit("yarn", "serve");
        assertEquals(2, app.code());
        assertTrue(app.text().contains("unknown application 'serve'"), app.text());
    }

    @Test
    void submitHandsItsArgumentsToSparkSubmitIntact() throws Exception {
        Path fake = tmp.resolve("spark-submit");
        Files.writeString(fake, "#!/bin/bash\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n");
        Files.setPosixFilePermissions(fake, PosixFilePermissions.fromString("rwxr-xr-x"));
        String conf = props("spark.executor.cores 1\n").toString();
        Out o = run(Map.of("SPARK_SUBMIT", fake.toString()), "/bin/bash", ROOT.resolve("deploy/bin/ouro-submit").toString(),
                "yarn", "train", "--properties-file", conf, "--jar", "/x/app.jar", "--no-plan", "--", "--config", "my run.yaml");
        assertEquals(0, o.code(), o.text());
        assertTrue(o.text().contains("[--name]\n[ouro train]\n"), o.text());
        assertTrue(o.text().endsWith("[/x/app.jar]\n[--config]\n[my run.yaml]\n"), "an argument with a space stays one: " + o.text());
    }

    @Test
    void submitPassesThePlansSettingsUnderTheOperatorsFileAndFlags() throws Exception {
        Path fake = tmp.resolve("spark-submit");
        // prints its arguments, then the properties file it was given
        Files.writeString(fake, "#!/bin/bash\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n"
                + "while [ $# -gt 0 ]; do [ \"$1\" != --properties-file ] || cat \"$2\"; shift; done\n");
        Files.setPosixFilePermissions(fake, PosixFilePermissions.fromString("rwxr-xr-x"));
        String conf = props("spark.executor.memory 100g\nspark.eventLog.enabled true\n").toString();
        Map<String, String> env = Map.of("SPARK_SUBMIT", fake.toString(),
                "OURO_PLAN_CLASSPATH", System.getProperty("java.class.path"), "TMPDIR", tmp.toString());
        String config = ROOT.resolve("pipeline-configs/ouro-1.4b.yaml").toString();
        String submit = ROOT.resolve("deploy/bin/ouro-submit").toString();
        Out o = run(env, "/bin/bash", submit, "yarn", "train", "--properties-file", conf, "--jar", "/x/app.jar",
                "--conf", "spark.executor.cores=12", "--", "--config", config, "--resume", "auto");
        assertEquals(0, o.code(), o.text());
        String t = o.text();
        assertTrue(t.contains("[--load-spark-defaults]\n"), "the cluster's defaults still apply beneath: " + t);
        assertTrue(t.contains("[--conf]\n[spark.executor.cores=12]\n"), "--conf wins over both files: " + t);
        assertTrue(t.matches("(?s).*spark\\.executor\\.instances +64\n.*"), t);
        assertTrue(t.matches("(?s).*spark\\.dynamicAllocation\\.enabled +false\n.*"), t);
        assertTrue(t.matches("(?s).*spark\\.executor\\.extraJavaOptions +-XX:\\+UseG1GC.*"), t);
        int plan = t.indexOf("spark.executor.memory    "), operator = t.indexOf("spark.executor.memory 100g");
        assertTrue(plan > 0 && operator > plan, "the operator's file comes after the plan's settings, so it wins: " + t);
        try (var left = Files.list(tmp)) {
            assertTrue(left.noneMatch(f -> f.getFileName().toString().startsWith("ouro-submit-")), "the merged file is removed");
        }

        Out unreadable = run(env, "/bin/bash", submit, "yarn", "train", "--properties-file", conf, "--jar", "/x/app.jar",
                "--", "--config", "hdfs:///nowhere/run.yaml");
        assertEquals(2, unreadable.code(), unreadable.text());
        assertTrue(unreadable.text().contains("--plan-config FILE, or --no-plan"), unreadable.text());
        Out local = run(env, "/bin/bash", submit, "k8s", "train", "--master", "k8s://https://a:1", "--image", "r/o:1",
                "--plan-config", config, "--dry-run", "--", "--config", "/opt/ouro/pipeline-configs/ouro-1.4b.yaml");
        assertEquals(0, local.code(), local.text());
        assertTrue(local.text().contains("--properties-file " + tmp.resolve("ouro-submit-")), local.text());
    }

    @Test
    void theDeployTemplatesAreWellFormed() throws Exception {
        JsonNode pod = new ObjectMapper(new YAMLFactory()).readTree(ROOT.resolve("deploy/k8s/executor-pod-template.yaml").toFile());
        assertEquals("Pod", pod.path("kind").asText());
        JsonNode c = pod.path("spec").path("containers").get(0);
        assertEquals("spark-kubernetes-executor", c.path("name").asText(), "Spark merges its container into this one");
        assertEquals(1, c.path("resources").path("limits").path("nvidia.com/gpu").asInt(), "one GPU per executor");
        List<String> keys = new ArrayList<>();
        for (String line : Files.readAllLines(ROOT.resolve("deploy/conf/spark-defaults.conf.template"))) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            String[] kv = line.trim().split("\\s+", 2);
            assertEquals(2, kv.length, "key and value: " + line);
            assertTrue(kv[0].startsWith("spark."), line);
            keys.add(kv[0]);
        }
        for (String k : List.of("spark.executor.resource.gpu.amount", "spark.task.resource.gpu.amount",
                "spark.executor.resource.gpu.discoveryScript", "spark.serializer", "spark.kryo.registrator")) {
            assertTrue(keys.contains(k), "the template sets " + k);
        }
        String docker = Files.readString(ROOT.resolve("deploy/docker/Dockerfile"));
        assertTrue(docker.contains("ocl-icd-libopencl1") && docker.contains("nvidia.icd")
                && docker.contains("/opt/ouro/ouro-app.jar") && docker.contains("/opt/ouro/gpu-discovery.sh"), docker);
        Class.forName("io.ouro.orchestrator.OuroKryoRegistrator"); // the registrator the template names exists
    }
}
