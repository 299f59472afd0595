#!/usr/bin/env bash
# On the GPU machine: the NCCL collectives test, the gRPC end-to-end suites against a server on
# the GPU (--device cuda), and the bundled model served from the GPU through the CLI. Binaries
# come from $BIN (default build-gpu/bin, built here), shared libraries from $LIBDIR (default
# .device/lib, made by device-bundle); NCCL comes from the machine's PyTorch installation.
# Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}
BIN=${BIN:-build-gpu/bin}
LIBDIR=${LIBDIR:-$PWD/.device/lib}
mkdir -p "$OUT"
. scripts/gpu_env.sh "$LIBDIR"
declare -A rc
timeout 120 "$BIN/nccl_communicator_test" --gtest_color=no >"$OUT/nccl.log" 2>&1
rc[nccl_communicator_test]=$?
model=$(mktemp -d)/tiny-block
"$BIN/attnres-make-model" --out "$model" --preset tiny-block --seed 7 >/dev/null
export ATTNRES_SERVER=$BIN/attnres-server ATTNRES_CLI=$BIN/attnres-cli
export ATTNRES_MAKE_MODEL=$BIN/attnres-make-model ATTNRES_E2E_MODEL_DIR=$model
export ATTNRES_E2E_DEVICE=cuda
for suite in ApiE2eTest GenerateE2eTest CliE2eTest ShutdownE2eTest LoadE2eTest OpenAiE2eTest \
             OpenAiToolsE2eTest \
             OpenAiShutdownE2eTest; do
  timeout 300 "$BIN/attnres_e2e_test" --gtest_filter="$suite.*" --gtest_color=no \
    >"$OUT/e2e_$suite.log" 2>&1
  rc[e2e_$suite]=$?
done
# The bundled model on the GPU, through the real CLI.
"$BIN/attnres-server" --model models/bundled/attnres-tiny-stories --device cuda --port 0 \
  >"$OUT/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$OUT/serve.log" && break; sleep 0.2; done
target=$(grep -o "listening on [0-9.:]*" "$OUT/serve.log" | awk '{print $3}')
"$BIN/attnres-cli" --target "$target" info | tee "$OUT/info.txt"
"$BIN/attnres-cli" --target "$target" generate --prompt "Once upon a time" --max-tokens 120 \
  --temperature 0 | tee "$OUT/story.txt"
rc[serve_bundled]=$?
kill -TERM $pid; wait $pid
rc[server_exit]=$?
echo "=== results ==="
grep -hE "^\[  (PASSED|FAILED|SKIPPED) " "$OUT"/nccl.log "$OUT"/e2e_*.log
for k in "${!rc[@]}"; do echo "$k: ${rc[$k]}"; done
