#!/usr/bin/env bash
# Every CPU benchmark of docs/benchmarks.md in one sitting, into runs/bench/<stamp>/:
#   info.txt, ops.json, blocks.json (+ blocks-reference.json: the same binary with
#   HERD_KERNELS=reference), train-*.json, compare.json, blocks.png. Each command's output
#   is also kept as <name>.txt. Optional: BASELINE=path/to/old/herd adds its blocks and train
#   runs (blocks-baseline.json, train-*-baseline.json) for before/after tables.
#   The binary is copied into OUT first, so a rebuild during the sitting changes nothing.
#   Profiles of Hyena/M2 at 8192 and of a GPT-125M step go to OUT/profile/.
# Usage: bash scripts/bench/run_all.sh [--quick]   (--quick: short lengths, fewer steps)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
HERD_SRC="${HERD:-$HERD_BUILD/herd}"
PY="$HERD_VENV/bin/python"
THREADS="${THREADS:-2}"
export OMP_NUM_THREADS="$THREADS"
OUT="${OUT:-$HERD_ROOT/runs/bench/$(date -u +%Y%m%d-%H%M)}"
mkdir -p "$OUT"
cp "$HERD_SRC" "$OUT/herd"
HERD="$OUT/herd"
LENGTHS=1024,2048,4096,8192,16384
STEPS=10
ITERS=3
ROUNDS=3
if [ "${1:-}" = "--quick" ]; then LENGTHS=256,1024; STEPS=3; ITERS=2; ROUNDS=1; fi
DATA="$HERD_ROOT/runs/data/fortunes"
[ -f "$DATA/manifest.yaml" ] || bash "$HERD_ROOT/scripts/prepare_fortunes.sh" >/dev/null

run() {  # name, command...
  local name="$1"; shift
  echo "[bench] $name: $*"
  "$@" 2>&1 | tee "$OUT/$name.txt" | grep -vE '^\s*$' | tail -n 3
}

run info "$HERD" info
run ops "$HERD" bench ops --device cpu --warmup 1 --iters 5 --json "$OUT/ops.json"
run blocks "$HERD" bench blocks --lengths "$LENGTHS" --iters "$ITERS" --json "$OUT/blocks.json"
run blocks-reference env HERD_KERNELS=reference "$HERD" bench blocks --lengths "$LENGTHS" \
  --iters "$ITERS" --json "$OUT/blocks-reference.json"
GPT125=(--set "data.dir=$DATA" --set model.vocab_size=50257 --set train.batch_size=4
  --set train.micro_batch_size=4 --set "train.threads=$THREADS")
run train-quickstart "$HERD" bench train configs/quickstart.yaml --set "data.dir=$DATA" \
  --set "train.threads=$THREADS" --steps "$STEPS" --json "$OUT/train-quickstart.json"
run train-gpt125m-T512 "$HERD" bench train configs/gpt-125m.yaml "${GPT125[@]}" \
  --set data.seq_len=512 --steps "$STEPS" --warmup-steps 1 --json "$OUT/train-gpt125m-T512.json"
run train-gpt125m-T1024-ckpt "$HERD" bench train configs/gpt-125m.yaml "${GPT125[@]}" \
  --set data.seq_len=1024 --set train.activation_checkpointing=layer --steps "$STEPS" \
  --warmup-steps 1 --json "$OUT/train-gpt125m-T1024-ckpt.json"
if [ -n "${BASELINE:-}" ]; then
  run blocks-baseline "$BASELINE" bench blocks --lengths "$LENGTHS" --iters "$ITERS" \
    --json "$OUT/blocks-baseline.json"
  run train-quickstart-baseline "$BASELINE" bench train configs/quickstart.yaml \
    --set "data.dir=$DATA" --set "train.threads=$THREADS" --steps "$STEPS" \
    --json "$OUT/train-quickstart-baseline.json"
  run train-gpt125m-T512-baseline "$BASELINE" bench train configs/gpt-125m.yaml "${GPT125[@]}" \
    --set data.seq_len=512 --steps "$STEPS" --warmup-steps 1 \
    --json "$OUT/train-gpt125m-T512-baseline.json"
fi
run train-gpt125m-T1024 "$HERD" bench train configs/gpt-125m.yaml "${GPT125[@]}" \
  --set data.seq_len=1024 --steps 3 --warmup-steps 1 --json "$OUT/train-gpt125m-T1024.json"
run compare "$PY" "$HERD_ROOT/scripts/bench/compare.py" --herd "$HERD" --threads "$THREADS" \
  --data "$DATA" --steps "$STEPS" --length 8192 --iters "$ITERS" --rounds "$ROUNDS" \
  --json "$OUT/compare.json"
run compare-gpt125m "$PY" "$HERD_ROOT/scripts/bench/compare.py" --herd "$HERD" \
  --threads "$THREADS" --data "$DATA" --gpt configs/gpt-125m.yaml --set model.vocab_size=50257 \
  --set train.batch_size=4 --set train.micro_batch_size=4 --set data.seq_len=512 \
  --steps 4 --mixers "" --rounds "$ROUNDS" --json "$OUT/compare-gpt125m.json"
run profile-blocks "$HERD" bench blocks --mixers hyena,m2 --lengths 8192 --iters 1 \
  --profile "$OUT/profile"
run profile-gpt125m "$HERD" bench train configs/gpt-125m.yaml "${GPT125[@]}" \
  --set data.seq_len=512 --steps 1 --warmup-steps 0 --profile "$OUT/profile" --profile-steps 2
"$PY" "$HERD_ROOT/scripts/bench/plot_blocks.py" "$OUT/blocks.json" "$OUT/blocks-reference.json" \
  --labels "fused,HERD_KERNELS=reference" --out "$OUT/blocks.png"
echo "[bench] results in $OUT"
