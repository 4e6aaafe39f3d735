#!/usr/bin/env bash
# Per-rank peak memory of one hyena-153m training sequence against its length, on one rank
# (context_parallel 1, 2 threads) and split over two (context_parallel 2, 2 ranks x 1 thread),
# with activation checkpointing, batch 1, fp32, into runs/bench/context-<stamp>/; the table and
# the longest length within each budget: scripts/bench/context_length.py.
# Usage: bash scripts/bench/context_length.sh [--quick]
#   env: LENGTHS1 (C=1) and LENGTHS2 (C=2), comma-separated (empty: none); STEPS timed after
#   WARMUP steps (default 1 and 1: from the second step on, AdamW's m and v are alive during
#   forward and backward, so a single step's peak is short of the steady state by their size);
#   ZERO2: train.zero of the C=2 runs (default 0; ZeRO shards over both ranks of the group)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
LENGTHS1="${LENGTHS1-8192,16384,32768}"
LENGTHS2="${LENGTHS2-16384,32768,65536}"
ZERO2="${ZERO2:-0}"
STEPS="${STEPS:-1}"
WARMUP="${WARMUP:-1}"
CONFIG=configs/hyena-153m.yaml
VOCAB=50257
if [ "${1:-}" = "--quick" ]; then
  LENGTHS1=256,512; LENGTHS2=512,1024; CONFIG=configs/quickstart.yaml; VOCAB=2048
fi
OUT="${OUT:-$HERD_ROOT/runs/bench/context-$(date -u +%Y%m%d-%H%M)}"
mkdir -p "$OUT"
cp "${HERD:-$HERD_BUILD/herd}" "$OUT/herd"
DATA="$HERD_ROOT/runs/data/fortunes"
[ -f "$DATA/manifest.yaml" ] || bash "$HERD_ROOT/scripts/prepare_fortunes.sh" >/dev/null

run() {  # C, L, name suffix, extra args...
  local c="$1" l="$2" name="c$1-L$2$3"
  shift 3
  echo "[bench] $name"
  "$OUT/herd" bench train "$CONFIG" "$@" --set "data.dir=$DATA" --set "model.vocab_size=$VOCAB" \
    --set "model.mixer.type=hyena" --set "model.max_seq_len=$l" --set "data.seq_len=$l" \
    --set train.batch_size=1 --set train.micro_batch_size=1 \
    --set train.activation_checkpointing=layer --set "train.context_parallel=$c" \
    --steps "$STEPS" --warmup-steps "$WARMUP" --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 ||
    { tail -5 "$OUT/$name.txt"; exit 1; }
  grep -E '^(step|memory|loss|rank) ' "$OUT/$name.txt"
}
steps="-steps$((WARMUP + STEPS))"
for l in ${LENGTHS1//,/ }; do OMP_NUM_THREADS=2 run 1 "$l" "$steps" --set train.threads=2; done
zero=""
[ "$ZERO2" = 0 ] || zero="-zero$ZERO2"
for l in ${LENGTHS2//,/ }; do
  OMP_NUM_THREADS=1 run 2 "$l" "$zero$steps" --nproc-per-node 2 --set train.threads=1 \
    --set "train.zero=$ZERO2"
done
"$HERD_VENV/bin/python" "$HERD_ROOT/scripts/bench/context_length.py" "$OUT" | tee "$OUT/table.md"
