#!/usr/bin/env bash
# Fuzzes the readers of untrusted bytes (tests/fuzz/) with libFuzzer, ASan and UBSan.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Builds build-fuzz/ with clang (-DATTNRES_FUZZ=ON, CPU only), then runs each target (default:
# all) for SECONDS (default 60) over a scratch copy of its corpus, so the committed corpus only
# grows by hand. A crash leaves its input in build-fuzz/crashes/<target>/; once fixed, copy it into
# tests/fuzz/corpus/<target>/ so that ctest replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(generate_request_fuzz openai_request_fuzz engine_batching_fuzz
                                   stop_checker_fuzz chat_template_fuzz tokenizer_fuzz
                                   tokenizer_json_fuzz model_config_fuzz generation_config_fuzz
                                   safetensors_fuzz tool_call_parser_fuzz json_schema_grammar_fuzz
                                   regex_grammar_fuzz)
scripts/install-deps.sh
extra=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || extra+=("$p")
done
if [ ${#extra[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${extra[@]}"
fi
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DATTNRES_FUZZ=ON >/dev/null
ninja -C build-fuzz -j"$(nproc)" "${targets[@]}"
status=0
# One fuzzing process is one thread of work; OpenMP's spinning workers would only take its core.
export OMP_NUM_THREADS=1
for t in "${targets[@]}"; do
  work=build-fuzz/corpus/$t crashes=build-fuzz/crashes/$t
  mkdir -p "$work" "$crashes"
  cp -n tests/fuzz/corpus/$t/* "$work"/
  echo "fuzz.sh: $t for ${seconds}s"
  if ! build-fuzz/bin/$t -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
       -artifact_prefix="$crashes/" -print_final_stats=1 "$work" 2>build-fuzz/$t.log; then
    echo "fuzz.sh: $t FAILED; input and log: $crashes/, build-fuzz/$t.log"
    tail -30 build-fuzz/$t.log
    status=1
  else
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" build-fuzz/$t.log | tr '\n' ' '
    echo
  fi
done
exit $status
