#!/usr/bin/env bash
# GPU check: run the OpenCL kernel parity tests and the step benchmark on a machine with an OpenCL GPU,
# and write the figures to a file. Such a machine may have no JDK, no Maven and no network, so the
# check runs from a self-contained bundle built beforehand on a build machine:
#
#   deploy/gpu-check.sh build            # here: builds target/gpu-bundle (jlink runtime + jars + tests)
#   deploy/gpu-check.sh run [OUT] [DEV]  # there: OUT defaults to gpu-check-results.txt, DEV to gpu
#
# "run" finds the bundle in target/gpu-bundle (a repository checkout) or next to this script (an
# unpacked bundle). It needs the OpenCL ICD loader and the vendor's ICD on the GPU machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cmd=${1:-}

build() {
  local out="$root/target/gpu-bundle"
  cd "$root"
  mvn -B -q -pl worker -am package -DskipTests
  mvn -B -q -pl worker test-compile
  rm -rf "$out" && mkdir -p "$out/lib" "$out/tests"
  mvn -B -q -pl worker dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$out/lib"
  mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.1 \
    -DoutputDirectory="$out/lib"
  cp worker/target/ouro-worker-*.jar "$out/lib/"
  # aparapi-jni carries natives for every platform; keep the Linux ones
  local jni
  jni=$(ls "$out"/lib/aparapi-jni-*.jar)
  (tmp=$(mktemp -d) && cd "$tmp" && unzip -q "$jni" && rm -rf win osx && rm -f "$jni" && zip -q -r "$jni" . && rm -rf "$tmp")
  # the test classes the check needs (no PyTorch on the GPU machine)
  (cd worker/target/test-classes && cp --parents -r io/ouro/worker/TestData.class io/ouro/worker/TestDevice.class \
      io/ouro/worker/GradientComparison.class io/ouro/worker/opencl io/ouro/worker/backend \
      io/ouro/worker/bench/StepBench*.class io/ouro/worker/bench/ReferenceStepBench*.class \
      io/ouro/worker/bench/MemoryBench*.class io/ouro/worker/bench/GemmBench*.class \
      io/ouro/worker/bench/LoadAverage*.class "$out/tests/")
  (cd worker/target/test-classes && cp --parents io/ouro/worker/reference/KernelParityOpenClTest*.class \
      io/ouro/worker/reference/GemmOpenClTest*.class io/ouro/worker/reference/AttentionOpenClTest*.class "$out/tests/")
  jlink --add-modules java.base,java.logging,jdk.incubator.vector,jdk.unsupported \
    --strip-debug --no-header-files --no-man-pages --compress=2 --output "$out/runtime" 2>/dev/null
  cp "$here/gpu-check.sh" "$out/"
  echo "bundle: $out ($(du -sh "$out" | cut -f1))"
}

run() {
  local results=${1:-gpu-check-results.txt} device=${2:-gpu} bundle
  if [ -d "$root/target/gpu-bundle/runtime" ]; then bundle="$root/target/gpu-bundle"; else bundle="$here"; fi
  local java="$bundle/runtime/bin/java"
  export POCL_EXTRA_BUILD_FLAGS="${POCL_EXTRA_BUILD_FLAGS:--cl-unsafe-math-optimizations}" # only read by pocl
  local cp="$bundle/tests:$(ls "$bundle"/lib/*.jar | grep -v console-standalone | tr '\n' ':')"
  local opts=(--add-modules=jdk.incubator.vector -Xmx16g -Douro.test.device="$device")
  {
    echo "== gpu-check $(date -u +%FT%TZ) device=$device"
    echo "== OpenCL devices (clinfo -l)"
    (command -v clinfo >/dev/null && clinfo -l) || echo "clinfo not installed"
    echo "== OpenCL devices (as the worker sees them)"
    "$java" "${opts[@]}" -cp "$cp" io.ouro.worker.opencl.OpenClDevices
    echo "== kernel and step parity tests on $device"
    timeout 300 "$java" "${opts[@]}" -jar "$bundle"/lib/junit-platform-console-standalone-*.jar \
      execute --class-path "$cp" --scan-class-path "$bundle/tests" \
      --include-classname '.*(OpenClTest|OpsParityTest|AccumulationTest|RecomputeTest|BufferSplitTest|GradientReadyTest|StateStreamingTest|OpenCl.*GenerateTest|OpenCl.*EvalTest)' \
      --details=summary --disable-banner || echo "TESTS FAILED (exit $?)"
    echo "== GEMM benchmark on $device: the hand-written OpenCL C kernel and the translated twin, GFLOP/s per layout"
    timeout 300 "$java" "${opts[@]}" -cp "$cp" io.ouro.worker.bench.GemmBench "$device" 4096 no-torch \
      || echo "BENCH FAILED (exit $?)"
    echo "== tensor cores: the probe (mma.sync bf16 as inline PTX in a one-warp program of its own, released after)"
    timeout 120 "$java" "${opts[@]}" -cp "$cp" io.ouro.worker.opencl.TensorCores "$device" || echo "PROBE FAILED (exit $?)"
    echo "== GEMM benchmark on $device: the tensor-core kernel (bf16 operands, fp32 sums), GFLOP/s per layout"
    timeout 300 "$java" "${opts[@]}" -cp "$cp" io.ouro.worker.bench.GemmBench "$device" 4096 no-torch TENSOR \
      || echo "BENCH FAILED (exit $?)"
    echo "== tensor-core GEMM parity on $device in a process of its own (train.matmul bf16_tensor comes first there)"
    timeout 300 "$java" "${opts[@]}" -Douro.test.matmul=bf16_tensor \
      -jar "$bundle"/lib/junit-platform-console-standalone-*.jar execute --class-path "$cp" \
      --select-method 'io.ouro.worker.reference.GemmOpenClTest#tensorCoreKernelMatchesTheBf16RoundedReference' \
      --details=summary --disable-banner || echo "TESTS FAILED (exit $?)"
    echo "== memory and recomputation benchmark on $device"
    timeout 600 "$java" "${opts[@]}" -cp "$cp" io.ouro.worker.bench.MemoryBench "$device" 3 0 \
      || echo "BENCH FAILED (exit $?)"
    echo "== step benchmark on $device"
    timeout 300 "$java" "${opts[@]}" -cp "$cp" io.ouro.worker.bench.StepBench "$device" 4 128 3 no-torch \
      || echo "BENCH FAILED (exit $?)"
    echo "== step benchmark on $device with train.matmul bf16_tensor (the tensor-core GEMM; MFU against the bf16 peak)"
    timeout 300 "$java" "${opts[@]}" -cp "$cp" io.ouro.worker.bench.StepBench "$device" 4 128 3 no-torch bf16_tensor \
      || echo "BENCH FAILED (exit $?)"
  } 2>&1 | grep -v "^WARNING: Using incubator" | tee "$results"
  echo "figures written to $results"
}

case "$cmd" in
  build) build ;;
  run) shift; run "$@" ;;
  *) echo "usage: deploy/gpu-check.sh build | run [OUT] [DEVICE]" >&2; exit 2 ;;
esac
