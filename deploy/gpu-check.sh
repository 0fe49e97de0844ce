#!/usr/bin/env bash
# GPU check: an eight-minute triage of the OpenCL backend on a machine with an OpenCL GPU. Such a machine may be
# lent for minutes, with no JDK, no Maven and no network, so the check runs from a self-contained bundle (a jlink
# runtime, the jars, the test classes, the OpenCL ICD loader and NVIDIA's ICD file) built beforehand:
#
#   deploy/gpu-check.sh build                         # here: builds target/gpu-bundle (under 64 MiB)
#   deploy/gpu-check.sh run [--quick] [OUT] [DEVICE]  # there: OUT defaults to gpu-check-results.txt, DEVICE to gpu
#   deploy/gpu-check.sh verify RESULTS                # CI: every stage has its RESULT line and none FAILED
#
# "run" finds the bundle next to this script (an unpacked or copied bundle: target/gpu-bundle/gpu-check.sh) or in
# target/gpu-bundle (a repository checkout). Stages, in the order of what they tell, each under its own timeout and
# all together under 480 s: facts, probe, compile, bigbuffer, parity, gemm, step (docs/gpu-check.md says what each
# records). A stage that fails prints "FAILED <stage>: <why>" and the next one runs. Each stage appends its output
# and one line "RESULT gpucheck stage=<name> ok=<0|1> seconds=<s> key=value ..." to the results as it ends: the file
# $OUT/gpu-check-results.txt when the environment variable OUT names a folder, else the file OUT.
# --quick runs every stage at small shapes (CI runs it on pocl).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cmd=${1:-}

STAGES=(facts probe compile bigbuffer parity gemm step)
LIMIT=480 # seconds, all stages together
# Per-stage limits (seconds), in the order of STAGES. A stage gets its limit or, when less, what is left of LIMIT
# after the floors of the stages still to come: time a stage did not use goes to the later ones. The full limits add
# up to under LIMIT. The quick ones are caps for pocl, where each new work-group size of the kernel program is a
# compile of its own (tens of seconds each on 2 cores with a cold cache; a warm cache makes the whole run seconds).
FULL_LIMITS=(25 35 150 50 80 50 80)
QUICK_LIMITS=(15 15 330 60 380 120 120)
FLOORS=(5 5 30 10 20 10 10)
# the parity tests: GEMM, attention, kernel and step parity, accumulation, recomputation, buffer splits, streaming
PARITY_FULL='.*(OpenClTest|OpsParityTest|AccumulationTest|RecomputeTest|BufferSplitTest|GradientReadyTest|StateStreamingTest|OpenCl.*GenerateTest|OpenCl.*EvalTest)'
PARITY_TC='.*(GemmOpenClTest|Bf16RoundingOpenClTest|WeightCopyStepOpenClTest|MemoryPlanOpenClTest)'
PARITY_QUICK='.*(GemmOpenClTest|AttentionOpenClTest|FlashAttentionOpenClTest|KernelParityOpenClTest|ReductionOpenClTest|StepOpsParityTest)'
BIGBUFFER='.*LargeBufferOpenClTest'

# ---------------------------------------------------------------------------------------------------------- build

build() (
  set -euo pipefail
  cd "$root"
  local out="$root/target/gpu-bundle" cache="$root/target/gpu-bundle-cache"
  mkdir -p "$cache"
  # 1. the reactor's jars and test classes, rebuilt only when a source is newer than the worker's jar
  local jar
  jar=$(ls worker/target/ouro-worker-*.jar 2>/dev/null | head -1 || true)
  if [ -z "$jar" ] || [ ! -d worker/target/test-classes ] \
      || [ -n "$(find pom.xml worker/pom.xml worker/src -newer "$jar" -print -quit)" ]; then
    mvn -B -q -Dstyle.color=never -o -pl worker -am package -DskipTests 2>/dev/null || mvn -B -q -Dstyle.color=never -pl worker -am package -DskipTests
    jar=$(ls worker/target/ouro-worker-*.jar | head -1)
  else
    echo "reusing $jar and worker/target/test-classes (no source newer)"
  fi
  # 2. the worker's dependencies (Aparapi, its JNI natives, BCEL; Jackson, "provided" by Spark elsewhere, which the
  # worker's hf package uses) and JUnit's console launcher, cached
  if [ ! -f "$cache/deps.done" ] || [ worker/pom.xml -nt "$cache/deps.done" ] || [ pom.xml -nt "$cache/deps.done" ]; then
    rm -rf "$cache/deps" && mkdir -p "$cache/deps"
    mvn -B -q -Dstyle.color=never -pl worker dependency:copy-dependencies -DincludeScope=compile -DoutputDirectory="$cache/deps"
    # the JUnit platform version that goes with the project's Jupiter (5.x.y -> 1.x.y)
    local jv
    jv=$(sed -n 's:.*<junit.version>5\.\(.*\)</junit.version>.*:1.\1:p' pom.xml | head -1)
    mvn -B -q -Dstyle.color=never -N dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$jv" \
      -DoutputDirectory="$cache/deps"
    # aparapi-jni carries natives for every platform: keep the Linux ones. Aparapi and BCEL carry Swing tools
    # (Aparapi's instruction viewer, BCEL's graphical verifier) that nothing here runs, and Jackson its optional
    # java.beans support (loaded by reflection, skipped when absent): without them jdeps finds no use of
    # java.desktop, and the runtime is about 10 MiB smaller
    strip_jar "$cache"/deps/aparapi-jni-*.jar win osx
    strip_jar "$cache"/deps/aparapi-[0-9]*.jar 'com/aparapi/internal/tool/InstructionViewer*' com/aparapi/util/swing
    strip_jar "$cache"/deps/bcel-*.jar org/apache/bcel/verifier/GraphicalVerifier.class \
      org/apache/bcel/verifier/VerifierAppFrame.class 'org/apache/bcel/verifier/VerifyDialog*' \
      org/apache/bcel/verifier/VerifierFactoryListModel.class
    strip_jar "$cache"/deps/jackson-databind-*.jar com/fasterxml/jackson/databind/ext/Java7SupportImpl.class
    # every jar runs on the class path, where a module descriptor means nothing; jdeps would read one as the module's
    # needs, optional ones included (Jackson's "requires static java.desktop"), instead of what the classes use
    local j
    for j in "$cache"/deps/*.jar; do
      if [ -n "$(jar tf "$j" | grep -E '^(META-INF/versions/[0-9]+/)?module-info\.class$')" ]; then
        strip_jar "$j" module-info.class 'META-INF/versions/*/module-info.class'
      fi
    done
    touch "$cache/deps.done"
  fi
  # 3. the OpenCL ICD loader from Debian's package, and NVIDIA's ICD file; "run" uses them only where missing
  if [ ! -f "$cache/libOpenCL.so.1" ]; then
    local tmp deb
    tmp=$(mktemp -d) && chmod 755 "$tmp"
    if (cd "$tmp" && apt-get download -q ocl-icd-libopencl1 >/dev/null 2>&1); then
      deb=$(ls "$tmp"/ocl-icd-libopencl1_*.deb)
      dpkg -x "$deb" "$tmp/x"
      cp -L "$(find "$tmp/x" -name libOpenCL.so.1 | head -1)" "$cache/libOpenCL.so.1"
      basename "$deb" > "$cache/libOpenCL.source"
    elif dpkg -L ocl-icd-libopencl1 2>/dev/null | grep '/libOpenCL.so.1$' >/dev/null; then
      # no package download (no network or no package lists): the same package's installed file
      cp -L "$(dpkg -L ocl-icd-libopencl1 | grep '/libOpenCL.so.1$' | head -1)" "$cache/libOpenCL.so.1"
      echo "installed ocl-icd-libopencl1 $(dpkg-query -W -f='${Version}' ocl-icd-libopencl1)" > "$cache/libOpenCL.source"
    else
      echo "cannot get libOpenCL.so.1: 'apt-get download ocl-icd-libopencl1' failed (run 'apt-get update' first)" >&2
      exit 1
    fi
    rm -rf "$tmp"
  fi
  # 4. the bundle: jars, the test classes the check runs (by package, so that new tests are picked up)
  rm -rf "$out" && mkdir -p "$out/lib/native" "$out/tests" "$out/vendors"
  cp "$cache"/deps/*.jar "$out/lib/"
  cp "$jar" "$out/lib/"
  cp "$cache/libOpenCL.so.1" "$out/lib/native/"
  cp "$cache/libOpenCL.source" "$out/lib/native/"
  echo "libnvidia-opencl.so.1" > "$out/vendors/nvidia.icd"
  # (a pattern that matches nothing, a package the tests left, is no error)
  local tests
  tests=$(cd worker/target/test-classes && {
      find io/ouro/worker -maxdepth 1 -name '*.class'
      find io/ouro/worker/opencl io/ouro/worker/backend -name '*.class'
      find io/ouro/worker/reference -name 'ReferenceKernels*.class'
      find io/ouro/worker/bench \( -name 'GemmBench*.class' -o -name 'StepBench*.class' -o -name 'LayerBench*.class' \
        -o -name 'ReferenceStepBench*.class' -o -name 'MemoryBench*.class' -o -name 'LoadAverage*.class' \)
    } 2>/dev/null || true)
  (cd worker/target/test-classes && echo "$tests" | xargs cp --parents -t "$out/tests/")
  # 5. the runtime: the modules jdeps finds in the jars and the test classes, nothing listed by hand
  local cp mods
  cp=$(ls "$out"/lib/*.jar | tr '\n' ':')
  mods=$(jdeps -J-Xlog:disable --print-module-deps --ignore-missing-deps --multi-release 17 --class-path "$cp" \
    "$out"/lib/*.jar "$out/tests")
  if [ ! -d "$cache/runtime" ] || [ "$(cat "$cache/runtime.modules" 2>/dev/null)" != "$mods" ]; then
    rm -rf "$cache/runtime"
    jlink --add-modules "$mods" --strip-debug --no-header-files --no-man-pages --compress=2 \
      --output "$cache/runtime"
    echo "$mods" > "$cache/runtime.modules"
  fi
  cp -a "$cache/runtime" "$out/runtime"
  echo "$mods" > "$out/runtime/modules"
  # the newest glibc symbol version the runtime's binaries ask for: "run" checks the machine's glibc against it
  grep -aoh 'GLIBC_2\.[0-9]*' "$out"/runtime/lib/*.so "$out"/runtime/lib/server/libjvm.so "$out"/runtime/bin/java \
    | sort -uV | tail -1 | sed 's/GLIBC_//' > "$out/runtime/glibc-needed"
  cp "$here/gpu-check.sh" "$out/"
  local kib
  kib=$(du -sk "$out" | cut -f1)
  echo "bundle: $out, $((kib / 1024)) MiB; runtime modules: $mods; glibc >= $(cat "$out/runtime/glibc-needed")"
  if [ "$kib" -ge $((64 * 1024)) ]; then
    echo "the bundle is $((kib / 1024)) MiB, over 64 MiB" >&2
    exit 1
  fi
)

strip_jar() { # strip_jar JAR PATH...: the jar without the entries (files, folders or globs) named (the JDK's jar tool)
  local jar=$1 tmp
  shift
  tmp=$(mktemp -d)
  (cd "$tmp" && jar xf "$jar" && for p in "$@"; do eval "rm -rf $p"; done && rm -f "$jar" \
    && jar --create --no-manifest --file "$jar" -C "$tmp" .)
  rm -rf "$tmp"
}

# ------------------------------------------------------------------------------------------------------------ run

# The stages. Each runs as "bash -c stage_<name>" under one timeout, with the variables below exported; it prints
# what it finds, "RESULT <part> key=value ..." lines whose pairs go into the stage's RESULT gpucheck line, and
# "FAILED <stage>: <why>" where it knows why it failed.

jrun() { # java with the bundle's runtime, classpath and options
  "$JAVA" "${JOPTS[@]}" -cp "$CP" "$@"
}

# A stage's second run (a tensor-core variant): with what is left of the stage's time, less a margin, so that a
# timeout there leaves the first run's figures standing; its RESULT keys prefixed tc_. It fails the stage with its
# own FAILED line. Usage: second STAGE "what" [ENV=VALUE ...] -- java arguments...
second() {
  local stage=$1 what=$2 envs=() rc left
  shift 2
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  left=$((STAGE_END - $(date +%s) - 3))
  if [ "$left" -lt 10 ]; then
    echo "FAILED $stage: no time left for $what ($left s)"
    return 1
  fi
  echo "-- $what (up to $left s)"
  env "${envs[@]}" timeout -k 3 "$left" "$JAVA" "${JOPTS[@]}" -cp "$CP" "$@" 2>&1 | tc_prefix
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAILED $stage: $what timed out after $left s"
  elif [ "$rc" -ne 0 ]; then
    echo "FAILED $stage: $what exited $rc"
  fi
  return "$rc"
}

stage_facts() {
  JOPTS=($JOPTS_S)
  echo "host=$(cat /proc/sys/kernel/hostname 2>/dev/null) kernel=$(uname -r) glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}') cpus=$(nproc)"
  echo "icd_loader=$ICD_LOADER icd_vendors=$ICD_VENDORS"
  local gpu="none" driver="unknown" gmem="unknown" cc="unknown"
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv || true
    local q
    q=$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader,nounits 2>/dev/null \
      | head -1)
    gpu=$(echo "$q" | cut -d, -f1 | sed 's/^ *//; s/ /_/g')
    driver=$(echo "$q" | cut -d, -f2 | tr -d ' ')
    gmem=$(echo "$q" | cut -d, -f3 | tr -d ' ')
    cc=$(echo "$q" | cut -d, -f4 | tr -d ' ')
  else
    echo "nvidia-smi: not installed"
  fi
  if command -v clinfo >/dev/null 2>&1; then
    clinfo -l || true
    clinfo 2>/dev/null | grep -E '^ *(Platform Name|Device Name|Driver Version|Device Version|Max compute units|Global memory size|Max memory allocation|Local memory size|Max work group size) ' || true
    [ "$driver" = unknown ] && driver=$(clinfo 2>/dev/null | sed -n 's/^ *Driver Version *//p' | head -1 | tr ' ' '_')
  else
    echo "clinfo: not installed"
  fi
  # libraries the runtime and Aparapi's JNI library need that this machine lacks
  local missing
  missing=$(ldd "$BUNDLE"/runtime/bin/java "$BUNDLE"/runtime/lib/*.so "$BUNDLE"/runtime/lib/server/libjvm.so \
    "$BUNDLE"/lib/native/libOpenCL.so.1 2>/dev/null | grep 'not found' | grep -v -E 'libjvm|libjava|libjli' \
    | awk '{print $1}' | sort -u | tr '\n' ',' | sed 's/,$//')
  local l
  for l in libstdc++.so.6 libgcc_s.so.1; do # Aparapi's JNI library (unpacked from its jar at run time)
    system_lib "$l" || missing="${missing:+$missing,}$l"
  done
  echo "missing_libs=${missing:-none}"
  # the NVIDIA driver's OpenCL library, which NVIDIA's ICD file names (a container needs the compute capability)
  local nvcl=absent
  system_lib libnvidia-opencl.so.1 && nvcl=present
  echo "RESULT facts-sh nvidia_smi_gpu=$gpu driver=${driver:-unknown} nvidia_smi_mem_mib=$gmem compute_cap=$cc libnvidia_opencl=$nvcl icd_loader=$ICD_LOADER icd_vendors=$ICD_VENDORS missing_libs=${missing:-none}"
  jrun io.ouro.worker.opencl.GpuFacts devices
}

stage_probe() {
  JOPTS=($JOPTS_S)
  local out rc
  # streamed as it comes (a hang still shows the build log so far), then read back
  jrun io.ouro.worker.opencl.TensorCores "$DEVICE" 2>&1 | tee "$SCRATCH/probe.out"
  rc=${PIPESTATUS[0]}
  out=$(cat "$SCRATCH/probe.out")
  [ $rc -eq 0 ] || return $rc
  if echo "$out" | grep '^tensor cores on .*: yes' >/dev/null; then
    # ldmatrix: whether gemm_tc.cl loads its fragments with it (the probe's second check; docs/tensor-cores.md)
    echo "RESULT probe tensor_cores=yes ldmatrix=$(echo "$out" | grep -q '^ldmatrix on .*: yes' && echo yes || echo no)"
  else
    echo "RESULT probe tensor_cores=no reason=$(echo "$out" | sed -n 's/^tensor cores on .*: no (\(.*\))$/\1/p' | tail -1 | tr ' =' '_:' | cut -c1-120)"
  fi
}

stage_compile() {
  JOPTS=($JOPTS_S)
  jrun io.ouro.worker.opencl.GpuFacts compile "$DEVICE" || return $?
  # the same compile under train.matmul: bf16_tensor (the PTX goes into the program only where the probe passed; a
  # process of its own, as the program is chosen once per process). Its keys carry the prefix tc_; on NVIDIA its
  # compile_s also shows whether CUDA_CACHE_PATH let it reuse the first.
  second compile "the compile under train.matmul bf16_tensor" -- \
    io.ouro.worker.opencl.GpuFacts compile "$DEVICE" bf16_tensor
}

stage_bigbuffer() {
  JOPTS=($JOPTS_S)
  if [ -z "$(find "$BUNDLE/tests" -name '*LargeBufferOpenClTest.class')" ]; then
    echo "FAILED bigbuffer: test class not in bundle"
    return 1
  fi
  junit "$BIGBUFFER"
}

stage_parity() {
  JOPTS=($JOPTS_S)
  # GEMM, attention, kernel and step-op parity first: a timeout in the rest still leaves their answer
  junit "$PARITY_QUICK"
  local rc=$?
  if [ "$TENSOR_CORES_FOUND" = 1 ]; then
    # the tensor-core kernel with the instruction (and its bf16 copies) in a process whose program is bf16_tensor's:
    # a process builds one program, and the run above built the fp32 one (whose tensor-core kernel is the emulation)
    second parity "the tensor-core parity tests in a bf16_tensor process" -- -Douro.test.matmul=bf16_tensor \
      -jar "$CONSOLE" execute --class-path "$CP" --scan-class-path "$BUNDLE/tests" --include-classname "$PARITY_TC" \
      --fail-if-no-tests --details=testfeed --disable-banner --disable-ansi-colors || rc=$?
  fi
  [ "$QUICK" = 1 ] && return $rc
  echo "-- the other parity tests (accumulation, recomputation, buffer splits, streaming, model, generation, eval)"
  junit "$PARITY_FULL" --exclude-classname "$PARITY_QUICK|$BIGBUFFER"
  local rc2=$?
  [ $rc -ne 0 ] && return $rc
  return $rc2
}

stage_gemm() {
  JOPTS=($JOPTS_S)
  local size=4096 rc
  [ "$QUICK" = 1 ] && size=256
  jrun io.ouro.worker.bench.GemmBench "$DEVICE" $size no-torch || return $?
  # the tensor-core kernel (emulated where the probe said no: at 4096 only worth it with the instruction)
  if [ "$TENSOR_CORES_FOUND" = 1 ] || [ "$QUICK" = 1 ]; then
    second gemm "the tensor-core kernel (bf16 operands, fp32 sums; train.matmul bf16_tensor)" -- \
      io.ouro.worker.bench.GemmBench "$DEVICE" $size no-torch TENSOR
  fi
}

stage_step() {
  JOPTS=($JOPTS_S)
  local shape rc
  if [ "$QUICK" = 1 ]; then
    shape=(width=64 heads=2 seq=64 vocab=256 ffn=176 iters=2)
  else
    # the layer bench's recipe-shaped layer: width 2048, 16 heads, FFN 5632, sequence 4096, one layer, T = 4, bf16
    # stash, layer recomputation, vocabulary 256
    shape=(iters=2 budget_s=20)
  fi
  jrun io.ouro.worker.bench.LayerBench "$DEVICE" "${shape[@]}" || return $?
  rc=0
  if [ "$TENSOR_CORES_FOUND" = 1 ]; then
    # the step under train.matmul: bf16_tensor, one timed step, MFU against the bf16 tensor-core peak; keys tc_
    second step "the step with the tensor-core GEMM (train.matmul bf16_tensor)" -- \
      io.ouro.worker.bench.LayerBench "$DEVICE" "${shape[@]}" iters=1 matmul=bf16_tensor || rc=$?
  fi
  return $rc
}

junit() { # the JUnit console over the bundle's test classes whose names match $1 (more console options may follow)
  local pattern=$1
  shift
  # testfeed: each test's start and end as it happens, so that a timeout still shows how far it got
  jrun -jar "$CONSOLE" execute --class-path "$CP" --scan-class-path "$BUNDLE/tests" --include-classname "$pattern" \
    --fail-if-no-tests --details=testfeed --disable-banner --disable-ansi-colors "$@"
}

tc_prefix() { # the RESULT lines of the tensor-core run, their keys prefixed tc_
  sed -E '/^RESULT /{s/^RESULT ([^ ]+)/RESULT \1-tc/; s/ ([A-Za-z0-9_.]+)=/ tc_\1=/g}'
}

system_lib() { # whether the dynamic linker finds library $1 without help (ldconfig's cache, else the usual folders)
  local ldc
  ldc=$(command -v ldconfig || ls /sbin/ldconfig /usr/sbin/ldconfig 2>/dev/null | head -1)
  # (awk reads it all: with pipefail, grep -q's early exit could fail the pipeline by SIGPIPE)
  if [ -n "$ldc" ]; then
    "$ldc" -p 2>/dev/null | awk -v lib="$1" '$1 == lib {found = 1} END {exit !found}'
  else
    ls /lib/x86_64-linux-gnu/"$1" /usr/lib/x86_64-linux-gnu/"$1" /usr/lib64/"$1" /lib64/"$1" /usr/lib/"$1" \
      >/dev/null 2>&1
  fi
}

run() {
  # [--quick] [OUT] [DEVICE], in any order: a device spec (gpu, gpu:<i>, cpu, cpu:<i>, opencl:<i>) is the DEVICE
  local quick=0 args=() device=gpu
  for a in "$@"; do
    if [ "$a" = --quick ]; then quick=1
    elif [[ "$a" =~ ^(gpu|cpu)(:[0-9]+)?$|^opencl:[0-9]+$ ]]; then device=$a
    else args+=("$a"); fi
  done
  local file=${args[0]:-gpu-check-results.txt} bundle
  if [ -d "$here/runtime" ]; then bundle="$here"; elif [ -d "$root/target/gpu-bundle/runtime" ]; then
    bundle="$root/target/gpu-bundle"
  else
    echo "no bundle next to this script or in $root/target/gpu-bundle: run 'deploy/gpu-check.sh build' first" >&2
    return 2
  fi
  local results=() scratch
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT" && results+=("$OUT/gpu-check-results.txt")
    [ ${#args[@]} -gt 0 ] && results+=("$file")
  else
    results+=("$file")
  fi
  for r in "${results[@]}"; do mkdir -p "$(dirname "$r")" && : > "$r" || return 2; done
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
  trap "rm -rf '$scratch'" EXIT

  # OpenCL: the bundle's ICD loader only where the machine has none; NVIDIA's ICD file added where no vendor file
  # names it (the machine's own vendors, pocl here, are kept)
  local icd_loader=system icd_vendors=system
  if ! system_lib libOpenCL.so.1; then
    export LD_LIBRARY_PATH="$bundle/lib/native${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    icd_loader=bundle
  fi
  if [ -z "${OCL_ICD_VENDORS:-}" ]; then
    local sysv=/etc/OpenCL/vendors
    if [ ! -d $sysv ] || [ -z "$(ls -A $sysv 2>/dev/null)" ]; then
      export OCL_ICD_VENDORS="$bundle/vendors"
      icd_vendors=bundle
    elif ! grep -qs nvidia $sysv/*.icd; then
      mkdir -p "$scratch/vendors" && cp $sysv/*.icd "$scratch/vendors/" 2>/dev/null
      cp "$bundle/vendors/nvidia.icd" "$scratch/vendors/"
      export OCL_ICD_VENDORS="$scratch/vendors"
      icd_vendors=system+bundle_nvidia
    fi
  else
    icd_vendors=env
  fi
  # NVIDIA's compile cache, writable, so that every later JVM reuses the first build of the kernel program
  local cachedir
  if [ -n "${OUT:-}" ] && mkdir -p "$(dirname "$OUT")/gpu-check-cache/cuda" 2>/dev/null \
      && [ -w "$(dirname "$OUT")/gpu-check-cache/cuda" ]; then
    cachedir="$(cd "$(dirname "$OUT")" && pwd)/gpu-check-cache/cuda"
  else
    cachedir="${TMPDIR:-/tmp}/gpu-check-cache/cuda" && mkdir -p "$cachedir"
  fi
  export CUDA_CACHE_PATH="${CUDA_CACHE_PATH:-$cachedir}" CUDA_CACHE_MAXSIZE="${CUDA_CACHE_MAXSIZE:-4294967296}"
  unset CUDA_CACHE_DISABLE
  export POCL_EXTRA_BUILD_FLAGS="${POCL_EXTRA_BUILD_FLAGS:--cl-unsafe-math-optimizations}" # only read by pocl

  export TENSOR_CORES_FOUND=0 QUICK=$quick DEVICE=$device BUNDLE=$bundle ICD_LOADER=$icd_loader ICD_VENDORS=$icd_vendors
  export JAVA="$bundle/runtime/bin/java" CONSOLE
  CONSOLE=$(ls "$bundle"/lib/junit-platform-console-standalone-*.jar)
  export CP="$bundle/tests:$(ls "$bundle"/lib/*.jar | grep -v console-standalone | tr '\n' ':')"
  export JOPTS_S="--add-modules=jdk.incubator.vector -XX:+UseG1GC -XX:MaxRAMPercentage=75 -Xss8m -Djava.io.tmpdir=$scratch -Douro.test.device=$device -Douro.test.canary=true -Douro.gpucheck.quick=$([ "$quick" = 1 ] && echo true || echo false)"
  export PARITY_FULL PARITY_QUICK PARITY_TC BIGBUFFER
  export SCRATCH=$scratch
  export -f jrun second junit tc_prefix system_lib "${STAGES[@]/#/stage_}"

  local limits=("${FULL_LIMITS[@]}")
  [ "$quick" = 1 ] && limits=("${QUICK_LIMITS[@]}")
  # GPU_CHECK_LIMITS="s1 s2 ...": other per-stage limits (in the order of STAGES; the 480 s total still holds)
  [ -n "${GPU_CHECK_LIMITS:-}" ] && read -r -a limits <<< "$GPU_CHECK_LIMITS"
  local start=$SECONDS failed=()
  {
    echo "== gpu-check $(date -u +%FT%TZ) device=$device quick=$quick bundle=$bundle results=${results[*]}"
    echo "== CUDA_CACHE_PATH=$CUDA_CACHE_PATH LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} OCL_ICD_VENDORS=${OCL_ICD_VENDORS:-}"
  } | tee -a "${results[@]}"
  # the runtime's glibc: a machine with an older one cannot start the JVM at all; say so in every stage
  local need have glibc_ok=1
  need=$(cat "$bundle/runtime/glibc-needed" 2>/dev/null || echo 0)
  have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then glibc_ok=0; fi

  local i
  for i in "${!STAGES[@]}"; do
    local name=${STAGES[$i]} limit=${limits[$i]} left log t0 rc secs why
    # GPU_CHECK_STAGES="a b": only those stages (trying one out; a run for the record runs them all)
    if [ -n "${GPU_CHECK_STAGES:-}" ] && [[ " $GPU_CHECK_STAGES " != *" $name "* ]]; then continue; fi
    left=$((LIMIT - (SECONDS - start) - 2))
    local j
    for ((j = i + 1; j < ${#STAGES[@]}; j++)); do
      if [ -z "${GPU_CHECK_STAGES:-}" ] || [[ " $GPU_CHECK_STAGES " == *" ${STAGES[$j]} "* ]]; then
        left=$((left - FLOORS[j]))
      fi
    done
    [ "$limit" -gt "$left" ] && limit=$left
    log="$scratch/$name.log"
    : > "$log"
    echo "== stage $name (limit ${limit} s)" | tee -a "${results[@]}"
    t0=$(date +%s.%N)
    if [ "$limit" -lt 5 ]; then
      echo "FAILED $name: no time left of the ${LIMIT} s" | tee -a "$log" "${results[@]}"
      rc=1
    elif [ "$glibc_ok" = 0 ]; then
      echo "FAILED $name: this machine's glibc $have is older than the $need the bundle's Java runtime needs" \
        | tee -a "$log" "${results[@]}"
      rc=1
    else
      STAGE_END=$(($(date +%s) + limit)) timeout -k 5 "$limit" bash -c "stage_$name" 2>&1 < /dev/null | grep --line-buffered -v '^WARNING: Using incubator' \
        | tee -a "$log" "${results[@]}"
      rc=${PIPESTATUS[0]}
    fi
    secs=$(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')
    if [ "$rc" -ne 0 ] && ! grep -q "^FAILED $name:" "$log"; then
      if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        why="timed out after $limit s"
        # JUnit's test feed: the test that was running
        local running
        running=$(grep ' :: STARTED$' "$log" | tail -1 | sed 's/^JUnit [A-Za-z]* > //; s/ :: STARTED$//')
        [ -n "$running" ] && why+=" (last test started: $running)"
      elif grep ' :: FAILED$' "$log" >/dev/null; then
        # JUnit's test feed: how many failed (tests and classes), the first and what it threw
        why="$(grep -c ' :: FAILED$' "$log") failed, first $(grep -m1 -A1 ' :: FAILED$' "$log" \
          | sed 's/^JUnit [A-Za-z]* > //; s/ :: FAILED$/:/; s/^[[:space:]]*//' | tr '\n' ' ')"
        why=$(echo "$why" | cut -c1-300)
      else
        why=$(grep -E '(Exception|Error)(:|$)|^\[ERROR\]' "$log" | grep -v '^\s*at ' | tail -1 \
          | sed 's/^[[:space:]]*//' | cut -c1-200)
        why="exit $rc${why:+: $why}"
      fi
      echo "FAILED $name: $why" | tee -a "${results[@]}"
    fi
    # the pairs of the stage's own RESULT lines, in order, then the JUnit summary
    local pairs
    pairs=$(grep -E '^RESULT ' "$log" | grep -v '^RESULT gpucheck' | sed -E 's/^RESULT [^ ]+ ?//' | tr '\n' ' ')
    if grep -qE '^\[ +[0-9]+ tests (successful|failed) +\]' "$log"; then
      # summed over the stage's JUnit runs
      pairs+=" tests_ok=$(sed -nE 's/^\[ +([0-9]+) tests successful +\]/\1/p' "$log" | awk '{n += $1} END {print n}')"
      pairs+=" tests_failed=$(sed -nE 's/^\[ +([0-9]+) tests failed +\]/\1/p' "$log" | awk '{n += $1} END {print n}')"
    fi
    [ "$rc" -eq 0 ] || failed+=("$name")
    # later stages run the tensor-core variants only where the probe said yes
    if [ "$name" = probe ] && grep '^RESULT probe tensor_cores=yes' "$log" >/dev/null; then
      export TENSOR_CORES_FOUND=1
    fi
    echo "RESULT gpucheck stage=$name ok=$([ "$rc" -eq 0 ] && echo 1 || echo 0) seconds=$secs $pairs" \
      | tr -s " " | sed "s/ *$//" | tee -a "${results[@]}"
  done
  echo "RESULT gpucheck stage=total ok=$([ ${#failed[@]} -eq 0 ] && echo 1 || echo 0) seconds=$((SECONDS - start)) failed=$(IFS=,; echo "${failed[*]:-none}")" \
    | tee -a "${results[@]}"
  echo "figures written to ${results[*]}"
  [ ${#failed[@]} -eq 0 ]
}

# --------------------------------------------------------------------------------------------------------- verify

# Checks a results file of "run" (CI): every stage has its RESULT gpucheck line with ok=1, and no FAILED line; the
# one exception is "FAILED bigbuffer: test class not in bundle" while the worker's test sources have no
# *LargeBufferOpenClTest (once they have it, the stage must pass).
verify() {
  local file=${1:?usage: deploy/gpu-check.sh verify RESULTS} bad=0 name
  local bigbuffer_absent=0
  if [ -z "$(find "$root/worker/src/test" -name '*LargeBufferOpenClTest.java' 2>/dev/null)" ]; then
    bigbuffer_absent=1
  fi
  for name in "${STAGES[@]}"; do
    if ! grep -q "^RESULT gpucheck stage=$name " "$file"; then
      echo "verify: no RESULT line for stage $name" >&2; bad=1
    fi
  done
  while IFS= read -r line; do
    if [ "$bigbuffer_absent" = 1 ] && [ "$line" = "FAILED bigbuffer: test class not in bundle" ]; then
      echo "verify: tolerated while worker/src/test has no LargeBufferOpenClTest: $line" >&2
      continue
    fi
    echo "verify: $line" >&2; bad=1
  done < <(grep '^FAILED ' "$file")
  local passed=0 failed=0 skipped=0
  while IFS= read -r line; do
    name=$(echo "$line" | sed -E 's/^RESULT gpucheck stage=([^ ]+) .*/\1/')
    if [ "$name" = total ]; then continue; fi
    if [ "$name" = bigbuffer ] && [ "$bigbuffer_absent" = 1 ]; then skipped=$((skipped + 1)); continue; fi
    if [[ "$line" != *" ok=1 "* ]]; then
      echo "verify: stage $name not ok: $line" >&2; bad=1; failed=$((failed + 1))
    else
      passed=$((passed + 1))
    fi
  done < <(grep '^RESULT gpucheck stage=' "$file")
  [ "$bad" = 0 ] && echo "verify: $file: every stage ran and passed"
  echo "gpucheck: $passed passed, $failed failed, $skipped skipped"
  return $bad
}

case "$cmd" in
  build) build ;;
  run) shift; run "$@" ;;
  verify) shift; verify "$@" ;;
  *) echo "usage: deploy/gpu-check.sh build | run [--quick] [OUT] [DEVICE] | verify RESULTS" >&2; exit 2 ;;
esac
