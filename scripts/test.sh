#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, and runs every test. GPU tests
# (label gpu) skip themselves on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure --timeout 600 -j"$(nproc)"
