#!/usr/bin/env bash
# Builds the quickstart corpus from the Debian `fortunes` package (data/recipes/fortunes.md):
# a BPE tokenizer trained by herd and train/val shards. Skips work already done.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
OUT="${1:-$HERD_ROOT/runs/data/fortunes}"
VOCAB="${HERD_VOCAB:-2048}"
HERD="$HERD_BUILD/herd"
mapfile -t FILES < <(find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort)
((${#FILES[@]})) || { echo "error: no fortune files in /usr/share/games/fortunes (is the fortunes package installed?)" >&2; exit 1; }
mkdir -p "$OUT"
if [ ! -f "$OUT/tokenizer.model" ]; then
  "$HERD" tokenizer train --input "${FILES[@]}" --doc-delimiter % --vocab-size "$VOCAB" --model-type bpe --out "$OUT/tokenizer"
fi
if [ ! -f "$OUT/manifest.yaml" ]; then
  "$HERD" prepare text --input "${FILES[@]}" --doc-delimiter % --tokenizer "$OUT/tokenizer.model" --out "$OUT" --val-fraction 0.05
fi
