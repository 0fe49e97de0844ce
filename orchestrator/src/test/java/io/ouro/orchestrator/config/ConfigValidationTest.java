package io.ouro.orchestrator.config;

import io.ouro.orchestrator.train.Plan;
import io.ouro.worker.comm.WireDtype;
import io.ouro.worker.model.MatmulPrecision;
import io.ouro.worker.opencl.DevicePeaks;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Config errors name the file, the field and what was expected; the shipped configs are valid. */
class ConfigValidationTest {

    static final String OK = """
            run: {name: t}
            data: {synthetic: {tokens: 1000}}
            train: {workers: 1}
            stages:
              - {name: a, steps: 3, seq_len: 8, batch_per_worker: 1}
            """;

    static String error(String yaml) {
        return assertThrows(ConfigException.class, () -> TrainConfig.parse("bad.yaml", yaml)).getMessage();
    }

    @Test
    void errorsNameFileFieldAndExpectation() {
        TrainConfig.parse("ok.yaml", OK);
        assertEquals("bad.yaml: stages[0].seq_len: expected an integer in [1, 1048576], got '0'",
                error(OK.replace("seq_len: 8", "seq_len: 0")));
        assertTrue(error(OK.replace("seq_len: 8", "seq_lenn: 8")).startsWith("bad.yaml: stages[0].seq_len: expected an integer (required)"));
        assertTrue(error(OK.replace("train: {workers: 1}", "train: {workers: 1, wrokers: 2}"))
                .startsWith("bad.yaml: train.wrokers: unknown field"));
        assertEquals("bad.yaml: stages[0].lr.schedule: expected constant, cosine or wsd, got 'linear'",
                error(OK.replace("batch_per_worker: 1}", "batch_per_worker: 1, lr: {schedule: linear}}")));
        assertTrue(error(OK.replace("batch_per_worker: 1}", "batch_per_worker: 1, mixture: {web: 1}}"))
                .startsWith("bad.yaml: stages[0].mixture.web: unknown field"));
        assertTrue(error(OK.replace("batch_per_worker: 1}", "batch_per_worker: 1, upcycle: {layers: 3}}"))
                .startsWith("bad.yaml: stages[0].upcycle.layers: expected a multiple of the current 2 layers"));
        assertTrue(error(OK.replace("steps: 3,", "steps: 3, tokens: 100,")).contains("give either steps or tokens"));
        assertTrue(error(OK.replace("train: {workers: 1}", "train: {workers: 1, device: tpu}"))
                .startsWith("bad.yaml: train.device: expected gpu | gpu:<n> | cpu | opencl:<index> | java"));
        assertTrue(error("run: [1, 2]").startsWith("bad.yaml: run: expected a mapping"));
        assertTrue(error(OK.replace("data: {synthetic: {tokens: 1000}}", "data: {}"))
                .startsWith("bad.yaml: data.manifest: required"));
        assertTrue(error(OK + "  - {name: a, steps: 1, seq_len: 8, batch_per_worker: 1}\n").contains("'a' is used twice"));
        assertTrue(error("stages: [\n").startsWith("bad.yaml: not valid YAML"));
    }

    @Test
    void injectedFaultsDefaultToNoneAreValidatedAndLeaveTheRunIdentityAlone() {
        String out = OK.replace("run: {name: t}", "run: {name: t, out: /tmp/x}")
                .replace("steps: 3,", "steps: 30,").replace("train: {workers: 1}", "train: {workers: 1, checkpoint_every: 10%s}");
        TrainConfig plain = TrainConfig.parse("ok.yaml", out.formatted(""));
        assertFalse(plain.train().inject().any());
        TrainConfig faults = TrainConfig.parse("ok.yaml", out.formatted(", inject: {task_failure_at_steps: [3, 17],"
                + " hang_at_steps: [25], checkpoint_write_failure_at_steps: [10]}"));
        assertEquals(List.of(3L, 17L), faults.train().inject().taskFailureAtSteps());
        assertEquals(List.of(25L), faults.train().inject().hangAtSteps());
        assertEquals(List.of(10L), faults.train().inject().checkpointWriteFailureAtSteps());
        assertEquals(plain.hash(), faults.hash(), "injected faults are not part of the run identity");
        assertEquals("bad.yaml: train.inject.hang_at_steps: expected a list of integers, got '5'",
                error(out.formatted(", inject: {hang_at_steps: 5}")));
        assertEquals("bad.yaml: train.inject.hang_at_steps[1]: expected an integer in [0, " + Long.MAX_VALUE / 4
                + "], got '\"x\"'", error(out.formatted(", inject: {hang_at_steps: [5, x]}")));
        assertTrue(error(out.formatted(", inject: {hang_at_step: [5]}")).startsWith("bad.yaml: train.inject.hang_at_step: unknown field"));
        assertEquals("bad.yaml: train.inject.task_failure_at_steps: step 30 is past the run's last step 29",
                error(out.formatted(", inject: {task_failure_at_steps: [30]}")));
        assertTrue(error(out.formatted(", inject: {checkpoint_write_failure_at_steps: [15]}"))
                .startsWith("bad.yaml: train.inject.checkpoint_write_failure_at_steps: step 15 is not a checkpoint step"));
        assertEquals(List.of(30L), TrainConfig.parse("ok.yaml", out.formatted(
                ", inject: {checkpoint_write_failure_at_steps: [30]}")).train().inject().checkpointWriteFailureAtSteps());
        assertTrue(error(out.formatted(", inject: {checkpoint_write_failure_at_steps: [31]}"))
                .startsWith("bad.yaml: train.inject.checkpoint_write_failure_at_steps: step 31 is not a checkpoint step"));
        assertTrue(error(OK.replace("train: {workers: 1}", "train: {workers: 1, inject: {hang_at_steps: [1]}}"))
                .startsWith("bad.yaml: train.inject: injected faults fire once per run output and need run.out"));
    }

    @Test
    void theStashDtypeIsValidatedPlannedAndPartOfTheRunIdentity() {
        TrainConfig fp32 = TrainConfig.parse("ok.yaml", OK);
        TrainConfig bf16 = TrainConfig.parse("ok.yaml", OK.replace("train: {workers: 1}",
                "train: {workers: 1, stash_dtype: bf16}"));
        assertFalse(fp32.train().bf16Stash(), "float32 by default");
        assertTrue(bf16.train().bf16Stash());
        assertTrue(Plan.memory(bf16.stages().get(0), 1, bf16.train()).shape().bf16Stash(), "the plan's shape carries it");
        assertNotEquals(fp32.hash(), bf16.hash(), "it changes the gradients, so a checkpoint of one is not the other's");
        assertEquals(fp32.hash(), TrainConfig.parse("ok.yaml", OK.replace("train: {workers: 1}",
                "train: {workers: 1, stash_dtype: fp32}")).hash());
        assertEquals("bad.yaml: train.stash_dtype: expected fp32 or bf16, got 'fp16'",
                error(OK.replace("train: {workers: 1}", "train: {workers: 1, stash_dtype: fp16}")));
    }

    @Test
    void theExchangeDtypeIsValidatedAndPartOfTheRunIdentity() {
        TrainConfig fp32 = TrainConfig.parse("ok.yaml", OK);
        TrainConfig bf16 = TrainConfig.parse("ok.yaml", OK.replace("train: {workers: 1}",
                "train: {workers: 1, exchange_dtype: bf16}"));
        assertEquals(WireDtype.FP32, fp32.train().exchangeDtype(), "fp32 by default");
        assertEquals(WireDtype.BF16, bf16.train().exchangeDtype());
        assertNotEquals(fp32.hash(), bf16.hash(), "bfloat16 on the wire rounds the summed gradients: another run");
        assertEquals(fp32.hash(), TrainConfig.parse("ok.yaml", OK.replace("train: {workers: 1}",
                "train: {workers: 1, exchange_dtype: fp32}")).hash(), "fp32 written out is the default");
        assertEquals("bad.yaml: train.exchange_dtype: expected fp32 or bf16, got 'fp16'",
                error(OK.replace("train: {workers: 1}", "train: {workers: 1, exchange_dtype: fp16}")));
    }

    @Test
    void theExchangeInterfaceIsCheckedAndNotPartOfTheRunIdentity() {
        TrainConfig plain = TrainConfig.parse("ok.yaml", OK);
        TrainConfig ib = TrainConfig.parse("ok.yaml", OK.replace("train: {workers: 1}",
                "train: {workers: 1, exchange_interface: ib0}"));
        TrainConfig subnet = TrainConfig.parse("ok.yaml", OK.replace("train: {workers: 1}",
                "train: {workers: 1, exchange_interface: 10.2.0.0/16}"));
        assertEquals("", plain.train().exchangeInterface(), "Spark's host by default");
        assertEquals("ib0", ib.train().exchangeInterface());
        assertEquals("10.2.0.0/16", subnet.train().exchangeInterface());
        assertEquals(plain.hash(), ib.hash(), "the network the bytes take does not change the sums");
        assertEquals("bad.yaml: train.exchange_interface: prefix length of '10.2.0.0/33': expected 0..32, got '33'",
                error(OK.replace("train: {workers: 1}", "train: {workers: 1, exchange_interface: 10.2.0.0/33}")));
        assertEquals("bad.yaml: train.exchange_interface: expected a subnet such as 10.2.0.0/16, got 'fabric/16'",
                error(OK.replace("train: {workers: 1}", "train: {workers: 1, exchange_interface: fabric/16}")));
        assertEquals("bad.yaml: train.exchange_interface: expected an interface name (such as ib0) or a subnet (such as"
                        + " 10.2.0.0/16), got 'ib 0'",
                error(OK.replace("train: {workers: 1}", "train: {workers: 1, exchange_interface: ib 0}")));
    }

    @Test
    void theMatmulIsValidatedPlannedAndPartOfTheRunIdentity() {
        TrainConfig fp32 = TrainConfig.parse("ok.yaml", OK);
        TrainConfig tc = TrainConfig.parse("ok.yaml", OK.replace("train: {workers: 1}",
                "train: {workers: 1, matmul: bf16_tensor}"));
        assertEquals(MatmulPrecision.FP32, fp32.train().matmul(), "fp32 by default");
        assertEquals(MatmulPrecision.BF16_TENSOR, tc.train().matmul());
        assertEquals(MatmulPrecision.BF16_TENSOR, Plan.memory(tc.stages().get(0), 1, tc.train()).shape().matmul(),
                "the plan's shape carries it to the worker's backend");
        assertEquals(MatmulPrecision.FP32, Plan.memory(fp32.stages().get(0), 1, fp32.train()).shape().matmul());
        // one buffer more per parameter segment: the weights' bfloat16 copy, 2 bytes per parameter
        var planFp32 = Plan.memory(fp32.stages().get(0), 1, fp32.train());
        var planTc = Plan.memory(tc.stages().get(0), 1, tc.train());
        assertEquals(0L, planFp32.weightCopyBytes());
        assertEquals(4L * ((planTc.parameters() + 1) / 2), planTc.weightCopyBytes(), "2 bytes per parameter (1 segment)");
        // and the activation copies' 4 slots in the arena, each rows x max(hidden, ffn) 16-bit values
        long slots = planTc.activationBytes() - planFp32.activationBytes();
        assertTrue(slots > 0 && slots <= 4 * 2L * planTc.shape().micro() * planTc.shape().seqLen()
                * Math.max(planTc.model().hidden(), planTc.model().ffn()) + 16, slots + " bytes of slots");
        assertEquals(planFp32.deviceBytes() + planTc.weightCopyBytes() - 4 + slots, planTc.deviceBytes(),
                "the weight copy replaces its one-float placeholder, the slots join the arena; nothing else changes");
        assertNotEquals(fp32.hash(), tc.hash(), "bfloat16 operands change the gradients: another run");
        assertEquals(fp32.hash(), TrainConfig.parse("ok.yaml", OK.replace("train: {workers: 1}",
                "train: {workers: 1, matmul: fp32}")).hash(), "fp32 written out is the default");
        assertEquals("bad.yaml: train.matmul: expected fp32 or bf16_tensor, got 'tf32'",
                error(OK.replace("train: {workers: 1}", "train: {workers: 1, matmul: tf32}")));
        // the plan names it and the peak the MFU is measured against
        List<String> plan = Plan.describe(tc);
        String total = plan.get(plan.size() - 1);
        assertTrue(total.contains("FLOP, matmul bf16_tensor (") && total.contains("MFU against the device's bf16 "
                + "tensor-core peak where it runs tensor cores, its fp32 peak elsewhere"), total);
        total = Plan.describe(fp32).get(plan.size() - 1);
        assertTrue(total.contains("FLOP, matmul fp32, MFU against the device's fp32 peak;"), total);
        String h100 = "OpenCL NVIDIA H100 80GB HBM3 (GPU, OpenCL 3.0 CUDA)";
        assertEquals(989400, Plan.mfuPeakGflops(tc.train(), h100 + ", " + DevicePeaks.ON_TENSOR_CORES));
        assertEquals(66900, Plan.mfuPeakGflops(tc.train(), h100), "bf16_tensor without tensor cores: the fp32 peak");
        assertEquals(66900, Plan.mfuPeakGflops(fp32.train(), h100 + ", " + DevicePeaks.ON_TENSOR_CORES));
        TrainConfig peak = TrainConfig.parse("ok.yaml", OK.replace("train: {workers: 1}",
                "train: {workers: 1, matmul: bf16_tensor, peak_gflops: 500}"));
        assertEquals(500, Plan.mfuPeakGflops(peak.train(), h100 + ", " + DevicePeaks.ON_TENSOR_CORES),
                "the config's peak wins");
        // on this machine's CPU device (pocl in CI): no tensor cores, and the line says so
        List<String> here = Plan.onThisDevice(TrainConfig.parse("ok.yaml", OK.replace("train: {workers: 1}",
                "train: {workers: 1, device: cpu, matmul: bf16_tensor}")));
        if (!here.isEmpty()) {
            assertEquals("  matmul bf16_tensor: no tensor cores here (a CPU device), the products run in fp32; MFU "
                    + "against no known peak (set train.peak_gflops)", here.get(1));
        }
    }

    @Test
    void samplingAndLossAreValidatedAndPartOfTheRunIdentity() {
        TrainConfig packed = TrainConfig.parse("ok.yaml", OK);
        assertEquals(io.ouro.worker.data.Sampler.Layout.PACKED, packed.stages().get(0).layout(), "packed by default");
        TrainConfig aligned = TrainConfig.parse("ok.yaml", OK.replace("batch_per_worker: 1}",
                "batch_per_worker: 1, sampling: aligned, loss: answer}"));
        assertEquals(new io.ouro.worker.data.Sampler.Layout(true, true), aligned.stages().get(0).layout());
        assertTrue(!aligned.hash().equals(packed.hash()), "another layout trains another model: another run");
        assertEquals("bad.yaml: stages[0].sampling: expected packed or aligned, got 'documents'",
                error(OK.replace("batch_per_worker: 1}", "batch_per_worker: 1, sampling: documents}")));
        assertEquals("bad.yaml: stages[0].loss: expected all or answer, got 'last'",
                error(OK.replace("batch_per_worker: 1}", "batch_per_worker: 1, sampling: aligned, loss: last}")));
        assertTrue(error(OK.replace("batch_per_worker: 1}", "batch_per_worker: 1, loss: answer}"))
                .contains("needs sampling: aligned"));
    }

    @Test
    void theRetryBudgetAndTheWallTimeCadenceAreValidatedAndPlanned() throws Exception {
        TrainSettings.Recovery d = TrainConfig.parse("ok.yaml", OK).train().recovery();
        assertEquals(new TrainSettings.Recovery(8, 1000, 10, 600, 0, 0), d, "defaults: 8 failures per 1000 steps, 10-600 s");
        String out = OK.replace("run: {name: t}", "run: {name: t, out: \"file:///tmp/t\"}");
        TrainConfig c = TrainConfig.parse("ok.yaml", out.replace("train: {workers: 1}", "train: {workers: 1,"
                + " checkpoint_every_minutes: 2.5, retry: {max_failures: 4, window_steps: 200, backoff_s: 1,"
                + " backoff_max_s: 8}}"));
        assertEquals(new TrainSettings.Recovery(4, 200, 1, 8, 2.5, 0), c.train().recovery());
        assertTrue(Plan.describe(c).get(2).contains("checkpoints every 50 steps or 2.5 minutes of wall time (whichever"
                + " comes first) and at each stage end"), Plan.describe(c).get(2));
        assertTrue(Plan.describe(c).get(2).contains("at most 4 failures per 200 committed steps, after a back-off of"
                + " 1 s doubling to 8 s"), Plan.describe(c).get(2));
        // the old field is refused, naming the new ones
        String old = error(OK.replace("train: {workers: 1}", "train: {workers: 1, max_attempts: 5}"));
        assertTrue(old.startsWith("bad.yaml: train.max_attempts: replaced by train.retry: {max_failures: N,"
                + " window_steps: K}"), old);
        assertTrue(old.contains("backoff_s, backoff_max_s"), old);
        assertTrue(error(OK.replace("train: {workers: 1}", "train: {workers: 1, checkpoint_every_minutes: 30}"))
                .startsWith("bad.yaml: train.checkpoint_every_minutes: checkpoints need run.out"));
        assertTrue(error(OK.replace("train: {workers: 1}", "train: {workers: 1, retry: {max_attempts: 3}}"))
                .startsWith("bad.yaml: train.retry.max_attempts: unknown field"));
        assertTrue(error(out.replace("train: {workers: 1}", "train: {workers: 1, retry: {backoff_s: 60,"
                + " backoff_max_s: 30}}")).startsWith("bad.yaml: train.retry.backoff_max_s: expected a number in [60.0"));
        for (String recipe : List.of("ouro-1.4b.yaml", "ouro-2.6b.yaml")) {
            TrainConfig r = TrainConfig.load(Path.of("..", "pipeline-configs", recipe));
            assertEquals(new TrainSettings.Recovery(8, 1000, 10, 600, 30, 0), r.train().recovery(), recipe);
        }
    }

    @Test
    void shippedPipelineConfigsAreValid() throws Exception {
        Path dir = Path.of("..", "pipeline-configs");
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
        }
        assertTrue(files.size() >= 3, "pipeline-configs holds the recipes and a demo: " + files);
        for (Path f : files) {
            TrainConfig cfg = TrainConfig.load(f);
            List<String> plan = Plan.describe(cfg);
            System.out.println(String.join("\n", plan));
            assertTrue(plan.size() == cfg.stages().size() + 2);
        }
        TrainConfig big = TrainConfig.load(dir.resolve("ouro-2.6b.yaml"));
        assertEquals(List.of("1a", "1a-t4", "1b", "ct-anneal", "longct", "mid-train"),
                big.stages().stream().map(Stage::name).limit(6).toList());
        assertEquals(48, big.stages().get(2).model().layers());
        assertEquals(24, big.stages().get(1).model().layers());
        assertEquals(8, big.stages().get(0).model().steps());
    }
}
