#!/usr/bin/env bash
# Benchmarks: tests/bench.sh <name> [args]. Each ends with one line
#   RESULT <name> key=value ... ratio=<ours/theirs>
# Names:
#   reference   one training step of the Java reference backend vs PyTorch (DJL, CPU) on the same
#               model and batch; args: [timed iterations, default 3]
#   step        one training step of our OpenCL backend, the Java backend and PyTorch on the bench
#               shape; args: [device, default opencl:0] [batch 4] [seqLen 128] [iterations 2] [torch|no-torch]
#               [fp32|bf16_tensor: train.matmul of the OpenCL backend]
#   layer       one training step of one recipe-shaped layer (width 2048, 16 heads, FFN 5632, sequence 4096, T = 4,
#               bf16 stash, layer recomputation, micro-batch 1; embedding, LM head and cross-entropy over a vocabulary of
#               256) on the OpenCL backend: time, counted FLOPs and bytes, and rates per op family, MFU against the
#               device's fp32 and bf16 peaks; args: [device, default opencl:0] [key=value: width= seq= heads= ffn=
#               vocab= steps= layers= iters= stash= recompute= matmul= budget_s=; smaller width and seq for a quick run]
#   embedding   the embedding backward at 16,384 rows x 2,048 over a 49,152-word vocabulary (Zipf-distributed stand-in
#               tokens): the translated op (an item per column) against the by-token kernel of reduce.cl (GPU default),
#               gradients compared bit for bit; args: [device, default opencl:0] [rows] [width] [vocab] [repetitions 3]
#   gemm        the OpenCL GEMM kernel in the step's three layouts vs PyTorch sgemm;
#               args: [device, default opencl:0] [size 1024] [no-torch] [kernel AUTO|OUTER|TILED|TENSOR; TENSOR
#               opens the ops with train.matmul bf16_tensor]
#   binding     Aparapi's OpenCL binding (OpenCLDevice.bind): a bound kernel touching one element on a small and
#               a large array (whole-array copies per call), what its put/get do; args: [device] [MiB 64]
#   tokenizer   single-thread encoding throughput of our BPE vs HF tokenizers (DJL) vs jtokkit on the
#               same documents (GPT-2's tokenizer), ids checked equal; args: [corpus, default fortunes-en] [rounds 5]
#   plan        the plan of every stage of the shipped recipes (micro-batch, recomputation, device memory by kind,
#               executor heap, FLOPs) on a 141 GiB device, at the config's W and at W = 64 and 256 (stages and
#               fit per recipe and W); args: [config files, default both recipes]
#   memory      trains a d 512, 4-layer, T 4 model on 1024-token sequences on the OpenCL backend with recompute
#               none / layer / loop_step: peak device bytes against the plan, and step time relative to none;
#               args: [device, default opencl:0] [steps 2] [recompute chunk rows, 0 = whole micro-batch]
#   allreduce   ring all-reduce on 127.0.0.1 (W = 2 and 4 threads, 1 MiB ... 256 MiB) against the
#               bandwidth-optimal time from the measured point-to-point bandwidth;
#               args: [rounds 7] [max MiB 256] [chunk KiB 256]
#   wire        the overlap bench's model (26M parameters) trained at W = 2 with the gradients exchanged in fp32 and then
#               in bf16 (train.exchange_dtype), same weights and batches: the losses' and weights' distance, ranks
#               bit-identical; args: [device java] [steps 30] [lr 0.001]
#   overlap     the data-parallel step of a d 512, 8-layer, T 2 model (26M parameters) with W = 1 and W = 2 ranks on
#               127.0.0.1: the gradient exchange's ring time, the share of it hidden behind the backward, the wait
#               after the backward, the W = 2 step time over W = 1's, with ZeRO-1 the parameter all-gather's ring
#               time and the share of it behind the next forward (gather_ms, gather_hidden); args: [device opencl:0]
#               [steps 3] [hidden 512] [layers 8] [seq 128] [loop steps 2] [connections 2] [bucket MiB 8]
#               [shard_optimizer false]
#   generate    greedy decoding with a KV cache on the bench model (every token all T steps), ours vs PyTorch
#               (DJL, its own KV cache) on the same weights, tokens compared; memory of the full, last_step and
#               average caches; args: [device, default opencl:0] [new tokens 32] [prompt tokens 16]
#   data        the training data path: a generated corpus (10^9 tokens, 64 shards) on the local
#               filesystem under $TMPDIR (deleted after), the windows of training steps (seq 4096, W = 2)
#               read by position; bytes read / bytes delivered, against the old whole-shard reader's rule,
#               and a 10^6-shard manifest's load time; args: [tokens 1e9] [shards 64] [steps 300]
#   loops       looplm-spec §6 at small scale: k layers once (k⊗1), looped T times (k⊗T) and k·T layers once on
#               the same Mano batches (aligned, loss on the answer), held-out accuracy per number of operators;
#               args key=value: [steps=600] [p=7] [ops=3] [k=2] [T=4] [batch=128] [lr=0.003] [models=k1,kT,kT1]
#               [form=prefix|chain] [beta=0.05] [ops1=0] [t1=0] [seed=1]
#   chaos       training on a local Spark standalone cluster (W = 3 executor JVMs) under injected faults (executor
#               and driver killed, task failure, hung rank, failed checkpoint write; the driver resumed with
#               --resume auto), final weights compared bit for bit with a fault-free run, steps lost per fault;
#               about 10-30 minutes; args: [faults, default all 12; CI's ChaosClusterTest runs a two-fault version]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
name=${1:-}
[ $# -gt 0 ] && shift
export SPARK_LOCAL_IP=127.0.0.1
# pocl (CPU OpenCL): let LLVM reassociate float sums so the GEMM vectorizes (see README, OpenCL backend).
export POCL_EXTRA_BUILD_FLAGS="${POCL_EXTRA_BUILD_FLAGS:--cl-unsafe-math-optimizations}"

test_classpath() { # module
  # in one reactor build, so that the modules it depends on resolve to this checkout's classes
  mvn -B -q -pl "$1" -am test-compile dependency:build-classpath -DskipTests -Dmdep.includeScope=test \
    -Dmdep.outputFile=target/bench.cp >&2
  echo "$1/target/test-classes:$1/target/classes:$(cat "$1/target/bench.cp")"
}

case "$name" in
  reference)
    cp=$(test_classpath worker)
    exec java -Xmx12g --add-modules=jdk.incubator.vector -Doffline=true \
      -DDJL_CACHE_DIR="$root/worker/target/djl-cache" -DENGINE_CACHE_DIR="$root/worker/target/djl-cache" \
      -cp "$cp" io.ouro.worker.bench.ReferenceStepBench "$@"
    ;;
  step)
    cp=$(test_classpath worker)
    exec java -Xmx16g --add-modules=jdk.incubator.vector -Doffline=true \
      -DDJL_CACHE_DIR="$root/worker/target/djl-cache" -DENGINE_CACHE_DIR="$root/worker/target/djl-cache" \
      -cp "$cp" io.ouro.worker.bench.StepBench "$@"
    ;;
  layer)
    cp=$(test_classpath worker)
    exec java -Xmx16g --add-modules=jdk.incubator.vector -cp "$cp" io.ouro.worker.bench.LayerBench "$@"
    ;;
  embedding)
    cp=$(test_classpath worker)
    exec java -Xmx6g -cp "$cp" io.ouro.worker.bench.EmbeddingBackwardBench "$@"
    ;;
  gemm)
    cp=$(test_classpath worker)
    exec java -Xmx8g --add-modules=jdk.incubator.vector -Doffline=true \
      -DDJL_CACHE_DIR="$root/worker/target/djl-cache" -DENGINE_CACHE_DIR="$root/worker/target/djl-cache" \
      -cp "$cp" io.ouro.worker.bench.GemmBench "$@"
    ;;
  binding)
    cp=$(test_classpath worker)
    exec java -Xmx2g -cp "$cp" io.ouro.worker.bench.BindingBench "$@"
    ;;
  allreduce)
    cp=$(test_classpath worker)
    exec java -Xmx8g -cp "$cp" io.ouro.worker.bench.AllReduceBench "$@"
    ;;
  wire)
    cp=$(test_classpath orchestrator)
    exec java -Xmx12g --add-modules=jdk.incubator.vector \
      -cp "$cp" io.ouro.orchestrator.bench.WireBench "$@"
    ;;
  overlap)
    cp=$(test_classpath orchestrator)
    exec java -Xmx12g --add-modules=jdk.incubator.vector \
      -cp "$cp" io.ouro.orchestrator.bench.OverlapBench "$@"
    ;;
  plan)
    cp=$(test_classpath orchestrator)
    exec java -Xmx2g -cp "$cp" io.ouro.orchestrator.bench.PlanBench "$@"
    ;;
  memory)
    cp=$(test_classpath worker)
    exec java -Xmx16g --add-modules=jdk.incubator.vector -cp "$cp" io.ouro.worker.bench.MemoryBench "$@"
    ;;
  generate)
    cp=$(test_classpath worker)
    exec java -Xmx6g --add-modules=jdk.incubator.vector -Doffline=true \
      -DDJL_CACHE_DIR="$root/worker/target/djl-cache" -DENGINE_CACHE_DIR="$root/worker/target/djl-cache" \
      -cp "$cp" io.ouro.worker.bench.GenerateBench "$@"
    ;;
  tokenizer)
    cp=$(test_classpath tokenizer)
    exec java -Xmx4g -Doffline=true \
      -DDJL_CACHE_DIR="$root/tokenizer/target/djl-cache" -DENGINE_CACHE_DIR="$root/tokenizer/target/djl-cache" \
      -cp "$cp" io.ouro.tokenizer.bench.TokenizerBench "$@"
    ;;
  data)
    cp=$(test_classpath orchestrator)
    df -h "${TMPDIR:-/tmp}" >&2
    exec java -Xmx6g --add-opens=java.base/java.nio=ALL-UNNAMED -Djava.io.tmpdir="${TMPDIR:-/tmp}" \
      -cp "$cp" io.ouro.orchestrator.bench.DataBench "$@"
    ;;
  chaos)
    # the application jar SparkSubmit runs, and the test classes (StandaloneCluster, ChaosRun)
    mvn -B -q -pl orchestrator -am package -DskipTests >&2
    cp=$(test_classpath orchestrator)
    # executor JVMs start all through the run (killed ones are replaced): they load a copy of the classes and the app
    # jar, so that a build in this checkout meanwhile does not change them under the run
    snap=$(mktemp -d "${TMPDIR:-/tmp}/ouro-chaos-classes.XXXXXX")
    for d in orchestrator/target/test-classes orchestrator/target/classes worker/target/classes tokenizer/target/classes; do
      mkdir -p "$snap/$d" && cp -r "$d/." "$snap/$d/"
    done
    cp "$root"/orchestrator/target/ouro-orchestrator-*-app.jar "$snap/app.jar"
    cp=$(echo "$cp" | sed -e "s#$root/#$snap/#g" -e "s#^orchestrator/#$snap/orchestrator/#" -e "s#:orchestrator/#:$snap/orchestrator/#g")
    java -Xmx1g -Douro.app.jar="$snap/app.jar" -cp "$cp" io.ouro.orchestrator.bench.ChaosBench "$@" && rc=0 || rc=$?
    rm -rf "$snap"
    exit $rc
    ;;
  loops)
    cp=$(test_classpath orchestrator)
    exec java -Xmx2g --add-modules=jdk.incubator.vector -cp "$cp" io.ouro.orchestrator.bench.LoopsBench "$@"
    ;;
  *)
    echo "usage: tests/bench.sh reference [iterations] | step [device] [batch] [seqLen] [iterations]" \
      "| plan [configs] | memory [device] [steps] [chunk] | loops [key=value ...]" \
      "| layer [device] [key=value ...] | gemm [device] [size] | allreduce [iterations] [maxMiB] [chunkKiB] | tokenizer [corpus] [rounds]" \
      "| data [tokens] [shards] [steps] | generate [device] [new] [prompt] | chaos [faults]" >&2
    exit 2
    ;;
esac
