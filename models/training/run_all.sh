#!/bin/bash
# The whole demo-model program in one go (made for one <=10 min call on the H200):
# tokenizer -> data -> AttnRes + standard twins trained concurrently -> export -> held-out eval ->
# bundled golden -> tiny-model goldens -> summary table. Never stops early: each stage logs and the
# outputs are packed at the end whatever happened.
#   models/training/run_all.sh OUTDIR            (env: WORK, PY, SEEDS, TRAIN_ARGS, TOKENIZER)
# Results: OUTDIR/bundle.tar (configs, tokenizer, logs, goldens, card_numbers.json) and the bundled
# model's shards OUTDIR/model-*.safetensors.
OUTDIR=${1:?usage: run_all.sh OUTDIR}
W=${WORK:-/tmp/attnres_work}
PY=${PY:-python3}
SEEDS=${SEEDS:-"1 2"}
T=models/training
export PYTHONUNBUFFERED=1
mkdir -p "$W/logs" "$OUTDIR"
log() { echo "[$(date +%T) +$((SECONDS))s] $*"; }

log "stage tokenizer"
if [ -n "${TOKENIZER:-}" ]; then
  [ "$TOKENIZER" = byte ] && TK="" || { cp "$TOKENIZER" "$W/tokenizer.json"; TK="$W/tokenizer.json"; }
else
  $PY $T/train_tokenizer.py --corpus .corpus --vocab 8192 --out "$W/tokenizer.json" \
    2>&1 | tee "$W/logs/tokenizer.log"
  TK="$W/tokenizer.json"
fi
log "stage data"
$PY $T/data.py --corpus .corpus --tokenizer "$TK" --out "$W" 2>&1 | tee "$W/logs/data.log"

log "stage train (concurrent)"
pids=""
for arch in attnres standard; do
  for s in $SEEDS; do
    $PY $T/train.py --data "$W" --arch $arch --seed $s --out "$W/${arch}_s$s" ${TRAIN_ARGS:-} \
      > "$W/logs/train_${arch}_s$s.log" 2>&1 &
    pids="$pids $!"
  done
done
for p in $pids; do wait $p; done
grep -h -E "params|done|step [0-9]+/" "$W"/logs/train_*.log | grep -E "params|done" 

log "stage export + eval"
for d in "$W"/attnres_s* "$W"/standard_s*; do
  [ -f "$d/ckpt.pt" ] || { log "missing $d/ckpt.pt"; continue; }
  $PY $T/export.py --ckpt "$d/ckpt.pt" --tokenizer "$TK" --out "$d/export" 2>&1 | tee -a "$W/logs/export.log"
  $PY $T/eval.py --model "$d/export" --data "$W" --result "$d/eval.json" 2>&1 | tee -a "$W/logs/eval.log"
done
B="$W/attnres_s1/export"          # the bundled model: AttnRes, seed 1 (fixed in advance)
mkdir -p "$W/golden"
$PY $T/eval.py --model "$B" --data "$W" --golden "$W/golden/bundled.json" --samples 3 --no-loss \
  --result "$W/bundled_eval.json" 2>&1 | tee -a "$W/logs/eval.log"

log "stage tiny goldens"
for n in tiny_std tiny_block tiny_full; do
  if [ -d tests/data/models/$n ]; then
    $PY tests/reference/make_golden.py --model tests/data/models/$n --out "$W/golden/$n.json" \
      2>&1 | tee -a "$W/logs/golden.log"
  else
    log "no tests/data/models/$n"
  fi
done
if [ -f "$W/standard_s1/export/config.json" ]; then   # our standard export vs transformers (if present)
  $PY tests/reference/make_golden.py --model "$W/standard_s1/export" --out "$W/std_check.json" --greedy 2 \
    2>&1 | tee -a "$W/logs/golden.log"
fi
$PY tests/reference/attnres_ref.py --selftest > "$W/logs/ref_selftest.log" 2>&1; tail -1 "$W/logs/ref_selftest.log"

log "stage pack"
$PY $T/summarize.py --work "$W" --bundled "$B" --golden "$W/golden/bundled.json" \
  --out "$W/card_numbers.json" > "$W/logs/summary.txt" 2>&1
mkdir -p "$W/pack/bundled" "$W/pack/runs"
cp "$B"/*.json "$W/pack/bundled/" 2>/dev/null
cp -r "$W/golden" "$W/logs" "$W/card_numbers.json" "$W/data_stats.json" "$W/bundled_eval.json" "$W/pack/" 2>/dev/null
for d in "$W"/attnres_s* "$W"/standard_s*; do
  mkdir -p "$W/pack/runs/$(basename $d)"; cp "$d"/*.json "$W/pack/runs/$(basename $d)/" 2>/dev/null
done
tar -C "$W/pack" -cf "$OUTDIR/bundle.tar" .
cp "$B"/model-*.safetensors "$OUTDIR/" 2>/dev/null
ls -la "$OUTDIR"
log "done"
cat "$W/logs/summary.txt"
