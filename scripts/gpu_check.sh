#!/usr/bin/env bash
# The one prepared GPU run (device tool): build if needed, every CUDA test, then herd's CUDA
# benchmarks, all output under ${OUT:-runs/gpu}. Meant for a single call well inside a lent
# device's time:  run(command="bash scripts/gpu_check.sh", timeout_s=540)
# Steps are bounded (timeout) and independent: a failing one is recorded and the rest run.
# The machine needs the project's venv (scripts/setup.sh) or a python with torch==2.11.0.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
OUT="${OUT:-$HERD_ROOT/runs/gpu}"
mkdir -p "$OUT"
status=0
step() {  # name, seconds, command...
  local name="$1" secs="$2"; shift 2
  echo "[gpu] $name: $*" | tee -a "$OUT/steps.txt"
  timeout "$secs" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  echo "[gpu] $name: exit $rc" | tee -a "$OUT/steps.txt"
  tail -n 25 "$OUT/$name.txt"
  [ $rc -eq 0 ] || status=1
}
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
if [ ! -x "$HERD_BUILD/herd" ] || [ ! -x "$HERD_BUILD/tests/herd_tests" ]; then
  step build 420 bash "$HERD_ROOT/scripts/setup.sh"
fi
B="$HERD_BUILD"
step info 30 "$B/herd" info
# Every test that needs a device (each skips without one; here none may skip).
step cuda-tests 240 "$B/tests/herd_tests" --gtest_filter='*Cuda*:*Device*:*cuda*' \
  --gtest_output="json:$OUT/cuda-tests.json"
grep -q '"result": "SKIPPED"' "$OUT/cuda-tests.json" 2>/dev/null &&
  { echo "[gpu] some CUDA tests skipped on a GPU machine" | tee -a "$OUT/steps.txt"; status=1; }
step bench-ops 120 "$B/herd" bench ops --device cuda --json "$OUT/ops-cuda.json"
step bench-blocks-bf16 150 "$B/herd" bench blocks --device cuda --dtype bfloat16 \
  --lengths 1024,4096,16384 --json "$OUT/blocks-cuda-bf16.json"
step bench-blocks-fp32 120 "$B/herd" bench blocks --device cuda --lengths 1024,8192 \
  --json "$OUT/blocks-cuda-fp32.json"
# Training on the GPU (needs a prepared dataset: carry runs/data/fortunes to the machine).
DATA="$HERD_ROOT/runs/data/fortunes"
if [ -f "$DATA/manifest.yaml" ]; then
  G=(--set "data.dir=$DATA" --set model.vocab_size=50257 --set train.device=cuda
     --set train.precision=bf16 --set train.batch_size=8 --set train.micro_batch_size=8)
  step bench-train-gpt125m 150 "$B/herd" bench train configs/gpt-125m.yaml "${G[@]}" \
    --set data.seq_len=1024 --steps 10 --json "$OUT/train-gpt125m-cuda.json"
  step bench-train-hyena153m 150 "$B/herd" bench train configs/hyena-153m.yaml "${G[@]}" \
    --set data.seq_len=1024 --steps 10 --json "$OUT/train-hyena153m-cuda.json"
  step train-gpt125m-nccl 200 "$B/herd" train configs/gpt-125m.yaml "${G[@]}" \
    --set data.seq_len=1024 --set train.steps=50 --set train.backend=nccl \
    --run-dir "$OUT/run-gpt125m" --overwrite
else
  echo "[gpu] no $DATA: training steps skipped" | tee -a "$OUT/steps.txt"; status=1
fi
echo "[gpu] done (status $status); results in $OUT"
exit $status
