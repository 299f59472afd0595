#!/usr/bin/env bash
# Runs every GPU test and benchmark on the GPU machine in one go and prints a short table last.
# Builds nothing there: build here first (scripts/gpu_run.sh --build does it and bundles the
# shared libraries into .device/lib), then carry .device and build-gpu/bin to the device and run
# `scripts/gpu_run.sh` there. Logs go to $OUT (or ./out). BUILD_DIR and DEVICE_DIR pick other
# build / bundle folders; GPU_TESTS="gpu_..._test ..." runs only those tests; GPU_BENCH=0 skips the
# benchmarks; GPU_BENCH_EAGER="presets" reruns those presets with CUDA graphs off. Each preset's
# measured steps are also traced kernel by kernel into $OUT/trace_PRESET.tsv (compare two with
# scripts/trace_compare.py). NCCL (every CUDA binary links it) comes from the machine's PyTorch
# installation, as in gpu_e2e.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD_DIR:-build-gpu}/bin
DEV=${DEVICE_DIR:-.device}
TESTS="gpu_kernels_test gpu_model_test gpu_graph_test gpu_tensor_parallel_test"
TARGETS="$TESTS attnres-gpu-bench attnres-kernel-bench attnres-chain-bench"

if [ "${1:-}" = "--build" ]; then
  cmake -S . -B "${BUILD_DIR:-build-gpu}" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    ninja -C "${BUILD_DIR:-build-gpu}" -j2 $TARGETS || exit 1
  rm -rf "$DEV/lib"
  ../shared/tools/device-bundle "$DEV/lib" $(for t in $TARGETS; do echo "$BIN/$t"; done)
  du -sh "$DEV" "$BIN"
  exit 0
fi

OUT=${OUT:-out}
mkdir -p "$OUT"
. scripts/gpu_env.sh "$PWD/$DEV/lib"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,memory.used \
  --format=csv 2>&1 | tee "$OUT/gpu.txt"
declare -A rc
for t in ${GPU_TESTS:-$TESTS}; do
  timeout 240 "$BIN/$t" --gtest_color=no >"$OUT/$t.log" 2>&1
  rc[$t]=$?
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |worst|greedy|graphs|Failure|Expected|Which is|row|W=" "$OUT/$t.log" | head -60
done
[ "${GPU_BENCH:-1}" = 0 ] && { for k in "${!rc[@]}"; do echo "$k: ${rc[$k]}"; done; exit 0; }
timeout 120 "$BIN/attnres-kernel-bench" >"$OUT/kernel_bench.md" 2>&1
rc[kernel_bench]=$?
# The decode projections chained alone: how close the Gemvs stream to copy without the kernels
# between them (bench/BENCHMARKS.md run 47).
timeout 60 "$BIN/attnres-chain-bench" >"$OUT/chain_bench.md" 2>&1
rc[chain_bench]=$?
# One process per preset: within one process, every runner after the first measures its b64
# step up to ~4% slow (bench/BENCHMARKS.md run 17), so presets would not compare fairly.
: >"$OUT/gpu_bench.md"
rc[gpu_bench]=0
for preset in ${GPU_BENCH_PRESETS:-$("$BIN/attnres-gpu-bench" --list-presets)}; do
  timeout 300 "$BIN/attnres-gpu-bench" --trace "$OUT/trace_$preset.tsv" "$preset" \
    >>"$OUT/gpu_bench.md" 2>&1 || rc[gpu_bench]=$?
done
if [ -n "${GPU_BENCH_EAGER:-}" ]; then
  timeout 200 "$BIN/attnres-gpu-bench" --no-cuda-graphs $GPU_BENCH_EAGER >"$OUT/gpu_bench_eager.md" 2>&1
  rc[gpu_bench_eager]=$?
fi
echo "=== per-kernel ==="
cat "$OUT/kernel_bench.md"
echo "=== decode projections chained ==="
cat "$OUT/chain_bench.md"
echo "=== end to end ==="
cat "$OUT/gpu_bench.md"
if [ -n "${GPU_BENCH_EAGER:-}" ]; then
  echo "=== end to end, CUDA graphs off ==="
  cat "$OUT/gpu_bench_eager.md"
fi
echo "=== issue #4's targets ==="
python3 scripts/gpu_targets.py "$OUT/gpu_bench.md" "$OUT/kernel_bench.md"
echo "=== exit codes ==="
for k in "${!rc[@]}"; do echo "$k: ${rc[$k]}"; done
