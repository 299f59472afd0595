#!/usr/bin/env bash
# The README's serve command: installs dependencies, builds, and serves the bundled model on
# 127.0.0.1:50051 (on the GPU when one is usable, else on the CPU). Arguments are passed to
# attnres-server, e.g. scripts/serve.sh --port 6000 --device cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/bin/attnres-server --model models/bundled/attnres-tiny-stories "$@"
