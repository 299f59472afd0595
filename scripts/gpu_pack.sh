#!/usr/bin/env bash
# Here (CUDA toolkit, no GPU): builds the GPU tests, benchmarks, server, CLI and e2e suites, and
# packs them, stripped, with the shared libraries the GPU machine lacks (device-bundle) into one
# xz archive small enough to travel with the tree to the GPU machine (default
# .devpack/pack.tar.xz; .devpack is git-ignored, so name it in the device tool's carry). There,
# scripts/gpu_all.sh PACK unpacks it and runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
out=${1:-.devpack/pack.tar.xz}
bins="gpu_kernels_test gpu_model_test gpu_graph_test gpu_tensor_parallel_test
      nccl_communicator_test attnres-kernel-bench attnres-gpu-bench attnres-server attnres-cli
      attnres-make-model attnres_e2e_test attnres-overlap-bench attnres-chain-bench"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$build" -j"$(nproc)" $bins
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/b/bin"
for b in $bins; do cp "$build/bin/$b" "$stage/b/bin/"; done
strip "$stage"/b/bin/*
../shared/tools/device-bundle "$stage/b/lib" "$stage"/b/bin/*
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - b | xz -T"$(nproc)" -9e >"$out"
du -h "$out"
