#!/usr/bin/env bash
# README command 1: set everything up, then train a small GPT on English text from Debian's
# `fortunes` package, evaluate it and sample from it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$HERD_ROOT/scripts/setup.sh"
cd "$HERD_ROOT"
bash scripts/prepare_fortunes.sh runs/data/fortunes
# --resume auto: a second run continues (or just evaluates) instead of being refused.
"$HERD_BUILD/herd" train configs/quickstart.yaml --run-dir runs/quickstart --resume auto "$@"
"$HERD_BUILD/herd" eval configs/quickstart.yaml --checkpoint "$(cat runs/quickstart/checkpoints/latest | sed 's|^|runs/quickstart/checkpoints/|')"
"$HERD_BUILD/herd" generate --checkpoint runs/quickstart/checkpoints --prompt "The " --max-tokens 60 --seed 7
