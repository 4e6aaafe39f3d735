#!/usr/bin/env bash
# Step time and per-rank memory of each distributed mode against plain data parallel, in one
# sitting, into runs/bench/dist-<stamp>/: 2 ranks x 1 thread on this machine (Gloo), the same
# global batch (2 sequences of SEQ tokens) in every mode, so every mode runs the same tokens:
#   dp     zero 0, one sequence per rank          (the baseline)
#   zero1  ZeRO-1, zero2  ZeRO-2
#   cp2    context_parallel 2: both sequences on both ranks, half of each per rank
# Modes alternate within each round, so a slow spell of the machine hits all of them alike.
# Each bench run measures its own sgemm peak (rank 0). The table: scripts/bench/dist_modes.py.
# Usage: bash scripts/bench/dist_modes.sh [--quick]    (env: SEQ=1024 STEPS=3 ROUNDS=2)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
SEQ="${SEQ:-1024}"
STEPS="${STEPS:-3}"
ROUNDS="${ROUNDS:-2}"
MODELS=(gpt-125m hyena-153m)
if [ "${1:-}" = "--quick" ]; then SEQ=64; STEPS=1; ROUNDS=1; MODELS=(quickstart); fi
OUT="${OUT:-$HERD_ROOT/runs/bench/dist-$(date -u +%Y%m%d-%H%M)}"
mkdir -p "$OUT"
cp "${HERD:-$HERD_BUILD/herd}" "$OUT/herd"  # a rebuild during the sitting changes nothing
DATA="$HERD_ROOT/runs/data/fortunes"
[ -f "$DATA/manifest.yaml" ] || bash "$HERD_ROOT/scripts/prepare_fortunes.sh" >/dev/null
export OMP_NUM_THREADS=1

mode_flags() {  # mode -> the --set flags that make it
  case "$1" in
    dp) echo "--set train.zero=0 --set train.micro_batch_size=1" ;;
    zero1) echo "--set train.zero=1 --set train.micro_batch_size=1" ;;
    zero2) echo "--set train.zero=2 --set train.micro_batch_size=1" ;;
    cp2) echo "--set train.context_parallel=2 --set train.micro_batch_size=2" ;;
  esac
}

for round in $(seq 1 "$ROUNDS"); do
  for model in "${MODELS[@]}"; do
    vocab=()
    [ "$model" = quickstart ] || vocab=(--set model.vocab_size=50257)
    for mode in dp zero1 zero2 cp2; do
      name="$model-$mode-r$round"
      echo "[bench] $name"
      # shellcheck disable=SC2046
      "$OUT/herd" bench train "configs/$model.yaml" --nproc-per-node 2 --set "data.dir=$DATA" \
        "${vocab[@]}" --set "data.seq_len=$SEQ" --set train.batch_size=2 --set train.threads=1 \
        $(mode_flags "$mode") --steps "$STEPS" --warmup-steps 1 --json "$OUT/$name.json" \
        >"$OUT/$name.txt" 2>&1 || { tail -5 "$OUT/$name.txt"; exit 1; }
      grep -E '^(step|gemm) ' "$OUT/$name.txt"
    done
  done
done
"$HERD_VENV/bin/python" "$HERD_ROOT/scripts/bench/dist_modes.py" "$OUT" | tee "$OUT/table.md"
