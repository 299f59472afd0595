#!/usr/bin/env bash
# Configures and builds attnres into build/ (Release-with-debug-info; CUDA backend when nvcc is
# found, e.g. /usr/local/cuda). Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
ninja -C build -j"$(nproc)"
