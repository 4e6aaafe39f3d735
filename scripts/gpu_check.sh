#!/usr/bin/env bash
# The prepared GPU run: the checks of the relocatable bundle (gpu-bundle/run.sh, one list of
# checks), assembled first by scripts/gpu_bundle.sh when this checkout has none. A GPU machine
# lent through the device tool cannot build herd (no network, none of its libraries): assemble
# the bundle here and carry it (docs/benchmarks.md "GPU").
#   scripts/gpu_check.sh [--out DIR] [--quick]     (results in DIR, default $OUT or runs/gpu)
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
BUNDLE="$HERD_ROOT/gpu-bundle"
if [ ! -x "$BUNDLE/run.sh" ]; then
  bash "$HERD_ROOT/scripts/gpu_bundle.sh" --out "$BUNDLE" || exit 2
fi
# The project's venv where it exists (this machine); python3's torch elsewhere.
[ -x "$HERD_VENV/bin/python" ] && export HERD_PYTHON="${HERD_PYTHON:-$HERD_VENV/bin/python}"
OUT="${OUT:-$HERD_ROOT/runs/gpu}" exec bash "$BUNDLE/run.sh" "$@"
