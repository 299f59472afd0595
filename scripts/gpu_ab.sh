#!/usr/bin/env bash
# A/B of environment switches on the GPU machine: attnres-gpu-bench per preset, the default
# against each variant (VAR=VALUE, or several joined by commas), in alternating processes (two
# variants compare only within one call on one card: bench/BENCHMARKS.md, "Comparing
# figures"), PASSES passes (odd ones default first, even ones default last); prints each pass's
# step times and a table of medians last. Builds nothing: carry the binaries as for gpu_run.sh.
#
#   scripts/gpu_ab.sh ATTNRES_FUSED_BOUNDARY=1 [A=1,B=1 ...] [bench flags...]
#
# BUILD_DIR / DEVICE_DIR as in gpu_run.sh; PRESETS (default: the four 1B and 8B presets), PASSES
# (default 3); bench flags default to --decode-only. Logs go to $OUT (or ./out), and each run's
# traced steps to $OUT/ab_PASS_PRESET_VARIANT.tsv: the table's "span" rows are their medians
# (first kernel's start to last one's end), steadier than the timed steps; scripts/trace_compare.py
# tells where two variants differ.
set -uo pipefail
cd "$(dirname "$0")/.."
variants=()
while [ $# -ge 1 ] && [[ "$1" == [A-Za-z_]*=* ]]; do
  variants+=("$1")
  shift
done
[ ${#variants[@]} -ge 1 ] || {
  echo "usage: scripts/gpu_ab.sh VAR=VALUE[,VAR=VALUE...] ... [bench flags...]" >&2
  exit 2
}
flags=("$@")
[ ${#flags[@]} -eq 0 ] && flags=(--decode-only)
BIN=${BUILD_DIR:-build-gpu}/bin
DEV=${DEVICE_DIR:-.device}
OUT=${OUT:-out}
mkdir -p "$OUT"
. scripts/gpu_env.sh "$PWD/$DEV/lib"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/ab_gpu.txt"
results="$OUT/ab_results.tsv"
: >"$results"
for pass in $(seq "${PASSES:-3}"); do
  for preset in ${PRESETS:-llama-8b llama-8b-block llama-1b llama-1b-block}; do
    # Odd passes run the default first, even ones last: a variant that always ran second would
    # meet a card the run before it has heated (prefill runs at the power cap: bench/BENCHMARKS.md
    # run 44).
    order=(default "${variants[@]}")
    if ((pass % 2 == 0)); then
      order=()
      for ((i = ${#variants[@]} - 1; i >= 0; --i)); do order+=("${variants[i]}"); done
      order+=(default)
    fi
    for variant in "${order[@]}"; do
      log="$OUT/ab_${pass}_${preset}_${variant//[^A-Za-z0-9_]/_}.md"
      trace=(--trace "${log%.md}.tsv")
      if [ "$variant" = default ]; then
        timeout 300 "$BIN/attnres-gpu-bench" "${trace[@]}" "${flags[@]}" "$preset" >"$log" 2>&1
      else
        IFS=, read -ra vars <<<"$variant"
        timeout 300 env "${vars[@]}" "$BIN/attnres-gpu-bench" "${trace[@]}" "${flags[@]}" \
          "$preset" >"$log" 2>&1
      fi
      # Rows "| model | measurement | step time | ..." -> preset, variant, measurement, ms.
      awk -F'|' -v p="$preset" -v v="$variant" '/ ms /{gsub(/^ +| +$/, "", $3); split($4, t, " ");
        print p "\t" v "\t" $3 "\t" t[1]}' "$log" | tee -a "$results"
    done
  done
done
echo "=== medians over ${PASSES:-3} passes (ms) ==="
python3 - "$results" <<'EOF'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    preset, variant, what, ms = line.rstrip("\n").split("\t")
    try:
        rows[(preset, what, variant)].append(float(ms))
    except ValueError:
        pass
keys = sorted({(p, w) for p, w, _ in rows})
variants = list(dict.fromkeys(v for _, _, v in rows))  # default first, then as given
variants.sort(key=lambda v: v != "default")
others = variants[1:]
print("| preset | measurement | " + " | ".join(variants) + " | " +
      " | ".join(f"change ({v})" for v in others) + " |")
print("|---|---|" + "---|" * (len(variants) + len(others)))
for p, w in keys:
    med = [statistics.median(rows[(p, w, v)]) if rows[(p, w, v)] else float("nan") for v in variants]
    changes = [(m / med[0] - 1) * 100 if med[0] else float("nan") for m in med[1:]]
    print(f"| {p} | {w} | " + " | ".join(f"{m:.3f}" for m in med) + " | " +
          " | ".join(f"{c:+.1f}%" for c in changes) + " |")
EOF
