#!/usr/bin/env bash
# Prepares Fashion-MNIST (Debian's dataset-fashion-mnist) for the ViT configs: uint8 image
# shards + manifest in runs/data/fashion-mnist (or $1). Skips work already done.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
OUT="${1:-$HERD_ROOT/runs/data/fashion-mnist}"
F=/usr/share/datasets/fashion-mnist
[ -f "$F/train-images-idx3-ubyte.gz" ] || { echo "error: $F/train-images-idx3-ubyte.gz missing (is dataset-fashion-mnist installed? run scripts/setup.sh)" >&2; exit 1; }
if [ ! -f "$OUT/manifest.yaml" ]; then
  "$HERD_BUILD/herd" prepare images \
    --idx-train-images "$F/train-images-idx3-ubyte.gz" --idx-train-labels "$F/train-labels-idx1-ubyte.gz" \
    --idx-test-images "$F/t10k-images-idx3-ubyte.gz" --idx-test-labels "$F/t10k-labels-idx1-ubyte.gz" \
    --class-names fashion-mnist --out "$OUT"
fi
