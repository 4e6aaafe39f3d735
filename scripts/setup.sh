#!/usr/bin/env bash
# Idempotent setup: apt packages, torch into a venv outside the tree, CMake configure + build.
# Safe to re-run; prints little when there is nothing to do. Runs without a terminal.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config python3-venv patchelf
  libyaml-cpp-dev libsentencepiece-dev sentencepiece libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libzstd-dev libxxhash-dev zlib1g-dev libfftw3-dev libjpeg62-turbo-dev libpng-dev
  fortunes fortunes-min dataset-fashion-mnist dict-gcide)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  $SUDO apt-get update -qq </dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

torch_ok() {
  [ -x "$HERD_VENV/bin/python" ] &&
    "$HERD_VENV/bin/python" -c "import torch,sys; sys.exit(torch.__version__.split('+')[0] != '$HERD_TORCH_VERSION')" 2>/dev/null
}
if ! torch_ok; then
  echo "[setup] installing torch==$HERD_TORCH_VERSION into $HERD_VENV"
  rm -rf "$HERD_VENV"
  mkdir -p "$HERD_CACHE"
  PY=python3
  [ -x /usr/bin/python3 ] && ! python3 -c "import venv" 2>/dev/null && PY=/usr/bin/python3
  "$PY" -m venv "$HERD_VENV"
  "$HERD_VENV/bin/pip" install -q --disable-pip-version-check --no-input "torch==$HERD_TORCH_VERSION" </dev/null
  torch_ok || { echo "[setup] error: torch $HERD_TORCH_VERSION did not import from $HERD_VENV" >&2; exit 1; }
fi

# Benchmark twins, sweeps, plots and TensorBoard files (scripts/): in the same venv.
PY_EXTRAS=(pyyaml matplotlib tensorboard)
if ! "$HERD_VENV/bin/python" -c "import yaml, matplotlib, tensorboard" 2>/dev/null; then
  echo "[setup] installing ${PY_EXTRAS[*]} into $HERD_VENV"
  "$HERD_VENV/bin/pip" install -q --disable-pip-version-check --no-input "${PY_EXTRAS[@]}" </dev/null
fi

if [ ! -f "$HERD_BUILD/build.ninja" ]; then
  echo "[setup] configuring $HERD_BUILD"
  herd_configure "$HERD_BUILD" || exit 1
fi
# Ninja's per-file progress lines are noise here; errors and warnings still show.
if ! cmake --build "$HERD_BUILD" ${HERD_TARGETS:+--target $HERD_TARGETS} -- -j"$(nproc)" 2>&1 |
  { grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking|Precompiling)' || true; }; then
  echo "[setup] error: build failed" >&2
  exit 1
fi
