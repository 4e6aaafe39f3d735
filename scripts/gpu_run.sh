#!/usr/bin/env bash
# gpu-bundle/run.sh [--out DIR] [--quick]: every GPU check of herd, run from the relocatable
# bundle that scripts/gpu_bundle.sh assembles (this file is scripts/gpu_run.sh there). The
# machine needs only python3 with torch (the version the bundle was built against): its torch
# and nvidia library folders go on the library path after the bundle's own lib/.
# Every step is bounded by `timeout` and the whole by HERD_GPU_BUDGET_S seconds (default 470);
# results.json, results.txt and log.txt go to DIR (default $OUT, the folder the device tool
# returns, else ./gpu-results). --quick: the CPU checks, the CUDA tests and 10 CUDA training
# steps only. HERD_PYTHON picks the python (default python3).
# Exit status: 0 every check passed; 1 a check failed; 2 the bundle cannot run on this machine;
# 3 no CUDA device (the CPU checks ran, the CUDA ones are reported "no device").
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -f "$HERE/bundle.env" ] || [ ! -f "$HERE/libpath.sh" ]; then
  echo "run.sh: error: $HERE is not a bundle (no bundle.env, libpath.sh): run it as gpu-bundle/run.sh after scripts/gpu_bundle.sh" >&2
  exit 2
fi
source "$HERE/libpath.sh"
source "$HERE/bundle.env"

RESULTS="${OUT:-$PWD/gpu-results}"
QUICK=0
while (($#)); do
  case "$1" in
    --out) RESULTS="${2:?--out needs a folder}"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run.sh: error: unknown argument \"$1\" (expected --out DIR or --quick)" >&2; exit 2 ;;
  esac
done
PY="${HERD_PYTHON:-python3}"
BUDGET_S="${HERD_GPU_BUDGET_S:-470}"
H="$HERE/herd"
DATA="$HERE/data/fortunes"
mkdir -p "$RESULTS" || { echo "run.sh: error: cannot create $RESULTS" >&2; exit 2; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/herd-gpu.XXXXXX")"
[ -n "${HERD_KEEP_WORK:-}" ] || trap 'rm -rf "$WORK"' EXIT
: >"$RESULTS/log.txt"
: >"$WORK/steps.tsv"
START=$SECONDS
HAVE_CUDA=0
SUMMARY=""

say() { echo "[gpu] $*" | tee -a "$RESULTS/log.txt"; }

# results.json (every step, its status and the JSON it wrote) and results.txt, from steps.tsv.
write_results() {
  RESULTS="$RESULTS" WORK="$WORK" QUICK="$QUICK" SUMMARY="$SUMMARY" "$PY" - "$@" <<'EOF' ||
import json, os, sys
out, work = os.environ["RESULTS"], os.environ["WORK"]
steps = []
for line in open(os.path.join(work, "steps.tsv")):
    name, kind, status, rc, secs, note = line.rstrip("\n").split("\t")
    step = {"name": name, "kind": kind, "status": status, "rc": int(rc), "seconds": float(secs), "note": note}
    log = os.path.join(work, name + ".log")
    if os.path.exists(log):
        step["tail"] = open(log, errors="replace").read().splitlines()[-25:]
    js = os.path.join(work, name + ".json")
    if os.path.exists(js):
        try:
            step["results"] = json.load(open(js))
        except ValueError as e:
            step["results_error"] = str(e)
    steps.append(step)
bundle = {k: v for k, v in os.environ.items() if k.startswith("HERD_BUNDLE_")}
doc = {"mode": "quick" if os.environ["QUICK"] == "1" else "full", "exit": int(sys.argv[1]),
       "summary": os.environ["SUMMARY"], "bundle": bundle, "steps": steps}
json.dump(doc, open(os.path.join(out, "results.json"), "w"), indent=1)
with open(os.path.join(out, "results.txt"), "w") as f:
    f.write(f"{doc['summary']}\n\n{'step':28} {'kind':5} {'status':10} {'rc':>4} {'seconds':>8}  note\n")
    for s in steps:
        f.write(f"{s['name']:28} {s['kind']:5} {s['status']:10} {s['rc']:>4} {s['seconds']:>8.1f}  {s['note']}\n")
    for s in steps:
        f.write(f"\n== {s['name']} ({s['status']})\n" + "\n".join(s.get("tail", [])) + "\n")
EOF
    echo "run.sh: warning: $PY could not write $RESULTS/results.json" >&2
}

finish() {  # EXIT_STATUS MESSAGE
  SUMMARY="$2"
  say "$2"
  echo "$2" >"$RESULTS/results.txt"  # replaced by the full table below when python runs
  export HERD_BUNDLE_COMMIT HERD_BUNDLE_DATE HERD_BUNDLE_TORCH HERD_BUNDLE_GLIBC HERD_BUNDLE_GLIBCXX \
    HERD_BUNDLE_CXXABI HERD_BUNDLE_CUDA_ARCHS
  write_results "$1"
  echo "[gpu] results in $RESULTS (results.json, results.txt, log.txt)"
  exit "$1"
}

record() {  # NAME KIND STATUS RC SECONDS NOTE
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$WORK/steps.tsv"
}

# step NAME KIND(cpu|cuda) MODE(quick|full) CAP_S COMMAND...: runs COMMAND in $WORK under
# `timeout`, within what is left of the budget; output in $WORK/NAME.log (and log.txt), any
# JSON it writes in $WORK/NAME.json. A cuda step without a device is recorded "no-device".
step() {
  local name="$1" kind="$2" mode="$3" cap="$4"
  shift 4
  [ "$mode" = full ] && ((QUICK)) && return 0
  if [ "$kind" = cuda ] && ((!HAVE_CUDA)); then
    record "$name" "$kind" no-device 0 0 "not run: no CUDA device"
    say "$name: no device"
    return 0
  fi
  local left=$((BUDGET_S - (SECONDS - START) - 5))
  local t=$((cap < left ? cap : left))
  if ((t < 10)); then
    record "$name" "$kind" no-time 0 0 "not run: the ${BUDGET_S} s budget is spent"
    say "$name: not run, the budget is spent"
    return 0
  fi
  say "$name (limit ${t} s): $*"
  local t0=$SECONDS rc
  (cd "$WORK" && timeout -k 10 "$t" "$@" </dev/null >"$WORK/$name.log" 2>&1)
  rc=$?
  local status=pass note=""
  ((rc == 0)) || status=fail
  ((rc == 124 || rc == 137)) && { status=timeout; note="stopped after ${t} s"; }
  { echo "== $name: exit $rc"; cat "$WORK/$name.log"; } >>"$RESULTS/log.txt"
  tail -n 5 "$WORK/$name.log"
  record "$name" "$kind" "$status" "$rc" "$((SECONDS - t0))" "$note"
  say "$name: $status (exit $rc, $((SECONDS - t0)) s)"
}

# A step that exited 0 but is still a failure (a CUDA test skipped on a GPU machine).
fail_last() {
  local f="$WORK/steps.tsv"
  awk -F'\t' -v OFS='\t' -v last="$(wc -l <"$f")" -v note="$1" \
    'NR == last && $3 == "pass" { $3 = "fail"; $6 = note } { print }' "$f" >"$f.new" && mv "$f.new" "$f"
  say "$1"
}

# --- The machine: python3's torch, the library path, every library of herd resolved.
torch_libs "$PY" || finish 2 "error: cannot import torch with $PY ($TORCH_ERROR): the bundle loads torch $HERD_BUNDLE_TORCH's libraries from python's torch package (set HERD_PYTHON to a python that has it)"
[ "${TORCH_VERSION%%+*}" = "${HERD_BUNDLE_TORCH%%+*}" ] ||
  finish 2 "error: $PY has torch $TORCH_VERSION, the bundle was built against $HERD_BUNDLE_TORCH (libtorch's C++ ABI changes between versions)"
export LD_LIBRARY_PATH="$HERE/lib:$TORCH_LIB_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{ echo "== libraries (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)"; ldd_pairs "$H" "$HERE/herd_tests"; } >>"$RESULTS/log.txt"
MISSING="$(ldd_pairs "$H" "$HERE/herd_tests" | awk '$2 == "not-found" { print $1 }' | tr '\n' ' ')"
[ -z "$MISSING" ] ||
  finish 2 "error: libraries of herd not found: ${MISSING% } (looked in $HERE/lib, torch's folders $TORCH_LIB_PATH and the system's)"
VERSIONS="$(ldd_version_errors "$H" "$HERE/herd_tests" | tr '\n' ';')"
[ -z "$VERSIONS" ] ||
  finish 2 "error: this machine's libraries are too old for the bundle (it needs glibc >= $HERD_BUNDLE_GLIBC, libstdc++ >= GLIBCXX_$HERD_BUNDLE_GLIBCXX, CXXABI_$HERD_BUNDLE_CXXABI): ${VERSIONS%;}"
GLIBC_HERE="$(ldd --version 2>/dev/null | head -n 1 | grep -oE '[0-9]+\.[0-9]+$')"
say "bundle $HERD_BUNDLE_COMMIT ($HERD_BUNDLE_DATE, CUDA ${HERD_BUNDLE_CUDA_ARCHS:-none}); torch $TORCH_VERSION; glibc $GLIBC_HERE; every library resolves"
command -v nvidia-smi >/dev/null && { echo "== nvidia-smi"; nvidia-smi 2>&1; } >>"$RESULTS/log.txt"

# --- The one list of checks (scripts/gpu_check.sh runs this file too).
# Settings of the CUDA training steps, as docs/benchmarks.md reports them.
G=(--set "data.dir=$DATA" --set model.vocab_size=50257 --set data.seq_len=1024 --set train.device=cuda
  --set train.precision=bf16 --set train.batch_size=8 --set train.micro_batch_size=8)
RANKS=()  # training runs: one rank per GPU, each with those 8 sequences (set after `herd info`)

cpu_checks() {
  step info cpu quick 30 "$H" info
  grep -qE '^cuda +available' "$WORK/info.log" 2>/dev/null && HAVE_CUDA=1
  local gpus
  gpus="$(sed -n 's/^cuda .*(devices: \([0-9]*\))$/\1/p' "$WORK/info.log" 2>/dev/null)"
  if ((${gpus:-0} > 1)); then
    RANKS=(--nproc-per-node "$gpus" --set train.batch_size=$((8 * gpus)))
  fi
  local d name  # the golden folder and each of its sub-folders (the runner does not descend)
  for d in "$HERE/golden" "$HERE"/golden/*/; do
    ls "$d"/*.safetensors >/dev/null 2>&1 || continue
    name=conformance
    [ "$d" = "$HERE/golden" ] || name="conformance-$(basename "$d")"
    step "$name" cpu quick 240 "$H" conformance "${d%/}"
  done
  step train-cpu cpu quick 120 "$H" train "$HERE/configs/quickstart.yaml" --set "data.dir=$DATA" \
    --set train.device=cpu --set train.steps=4 --set train.eval_batches=2 --set train.sample_tokens=16 \
    --run-dir "$WORK/run-cpu" --overwrite
}

cuda_checks() {
  # Every test that needs a device (each skips without one; on a GPU machine none may skip).
  step cuda-tests cuda quick 240 "$HERE/herd_tests" --gtest_filter='*Cuda*:*Device*:*cuda*' \
    --gtest_output="json:$WORK/cuda-tests.json"
  if grep -q '"result": "SKIPPED"' "$WORK/cuda-tests.json" 2>/dev/null; then
    fail_last "cuda-tests: $(grep -c '"result": "SKIPPED"' "$WORK/cuda-tests.json") tests skipped on a GPU machine"
  fi
  # Training through NCCL: one rank per GPU (herd makes no process group for one rank, so on a
  # one-GPU machine this trains without calling NCCL), 8 sequences of 1024 tokens per rank.
  local steps=50
  ((QUICK)) && steps=10
  step train-gpt125m-nccl cuda quick 200 "$H" train "$HERE/configs/gpt-125m.yaml" "${G[@]}" "${RANKS[@]}" \
    --set train.steps=$steps --set train.backend=nccl --set train.eval_batches=2 \
    --run-dir "$WORK/run-gpt125m" --overwrite
  scale_checks
  step bench-train-gpt125m cuda full 150 "$H" bench train "$HERE/configs/gpt-125m.yaml" "${G[@]}" \
    --steps 10 --json "$WORK/bench-train-gpt125m.json"
  step bench-train-hyena153m cuda full 150 "$H" bench train "$HERE/configs/hyena-153m.yaml" "${G[@]}" \
    --steps 10 --json "$WORK/bench-train-hyena153m.json"
  step bench-ops cuda full 120 "$H" bench ops --device cuda --json "$WORK/bench-ops.json"
  step bench-blocks-bf16 cuda full 150 "$H" bench blocks --device cuda --dtype bfloat16 \
    --lengths 1024,4096,16384 --json "$WORK/bench-blocks-bf16.json"
  step bench-blocks-fp32 cuda full 120 "$H" bench blocks --device cuda --lengths 1024,8192 \
    --json "$WORK/bench-blocks-fp32.json"
}

# >>> The scale runs: ZeRO (train.zero) and context parallelism (train.context_parallel), each
# over NCCL with one rank per GPU. On a one-GPU machine train.backend: nccl still makes a
# process group of one, so the NCCL paths (gradient buckets, ZeRO's reduce-scatter and
# all-gather) run; context parallelism is then C = 1 (2 on an even number of GPUs). A setting
# this build of herd does not know is recorded "pending".
scale_checks() {
  if knows_setting train.zero 2; then
    step train-zero2-nccl cuda quick 150 "$H" train "$HERE/configs/gpt-125m.yaml" "${G[@]}" "${RANKS[@]}" \
      --set train.steps=20 --set train.backend=nccl --set train.zero=2 --set train.eval_batches=2 \
      --run-dir "$WORK/run-zero2" --overwrite
  else
    pending train-zero2-nccl "train.zero is not in this build of herd"
  fi
  if knows_setting train.context_parallel 2; then
    local cp=1  # RANKS holds --nproc-per-node N on a machine of N > 1 GPUs
    ((${#RANKS[@]} > 0 && ${RANKS[1]:-1} % 2 == 0)) && cp=2
    local z
    for z in 0 1; do
      step "train-context-parallel-c${cp}-zero${z}-nccl" cuda quick 150 "$H" train \
        "$HERE/configs/hyena-153m.yaml" "${G[@]}" "${RANKS[@]}" --set train.steps=20 \
        --set train.backend=nccl --set train.context_parallel=$cp --set train.zero=$z \
        --set train.eval_batches=2 --run-dir "$WORK/run-context-zero$z" --overwrite
    done
  else
    pending train-context-parallel "train.context_parallel is not in this build of herd"
  fi
}

pending() {  # NAME NOTE: a CUDA run this script does not make yet ("no-device" without a GPU)
  if ((HAVE_CUDA)); then
    record "$1" cuda pending 0 0 "$2"
  else
    record "$1" cuda no-device 0 0 "not run: no CUDA device ($2)"
  fi
}

# knows_setting KEY VALUE: false when `herd config check` calls KEY an unknown key.
knows_setting() {
  local said
  said="$("$H" config check "$HERE/configs/gpt-125m.yaml" --set "$1=$2" 2>&1)"
  [[ "$said" != *"$1: unknown key"* ]]
}

cpu_checks
cuda_checks
FAILED="$(awk -F'\t' '$3 == "fail" || $3 == "timeout" || $3 == "no-time" { print $1 }' "$WORK/steps.tsv" | tr '\n' ' ')"
[ -z "$FAILED" ] || finish 1 "failed: ${FAILED% } ($((SECONDS - START)) s)"
((HAVE_CUDA)) || finish 3 "error: no device: herd info finds no CUDA device, so the CUDA checks did not run (the CPU checks passed)"
finish 0 "every check passed ($((SECONDS - START)) s)"
