#!/usr/bin/env bash
# On the GPU machine, in one go: unpacks a pack made here by scripts/gpu_pack.sh into .devpack/b,
# then runs every GPU test and benchmark (gpu_run.sh, the four 1B and 8B presets), the
# end-to-end suites on the GPU (gpu_e2e.sh) and, with AB="VAR=VALUE", that switch's decode A/B
# (gpu_ab.sh). Logs go to $OUT (or ./out). With REQUIRE_CARD=H200 it runs nothing unless the
# card's name contains that (the device tool may answer a call for an H200 with an H100; the
# targets of issue #4 are the H200's), so such a call costs only the machine's start.
#   scripts/gpu_all.sh .devpack/pack.tar.xz
set -uo pipefail
cd "$(dirname "$0")/.."
pack=${1:?usage: scripts/gpu_all.sh PACK.tar.xz}
if [ -n "${REQUIRE_CARD:-}" ]; then
  card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
  [[ "$card" == *"$REQUIRE_CARD"* ]] || { echo "card: $card, not $REQUIRE_CARD: nothing run"; exit 0; }
fi
mkdir -p .devpack && tar -xJf "$pack" -C .devpack || exit 1
export BUILD_DIR=.devpack/b DEVICE_DIR=.devpack/b
GPU_BENCH_PRESETS=${GPU_BENCH_PRESETS:-"llama-8b llama-8b-block llama-1b llama-1b-block"} \
  scripts/gpu_run.sh
BIN=.devpack/b/bin LIBDIR=$PWD/.devpack/b/lib scripts/gpu_e2e.sh
if [ -n "${AB:-}" ]; then scripts/gpu_ab.sh "$AB"; fi
