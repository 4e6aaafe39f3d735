# Sourced by herd's scripts: where the venv and the compiler cache live (outside the tree,
# so fresh clones reuse them), keyed by the torch version the project pins.
HERD_TORCH_VERSION=2.11.0
HERD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERD_CACHE="${HERD_CACHE:-$HOME/.cache/herd}"
HERD_VENV="$HERD_CACHE/venv-torch-$HERD_TORCH_VERSION"
HERD_BUILD="${HERD_BUILD:-$HERD_ROOT/build}"
export CCACHE_DIR="$HERD_CACHE/ccache-torch-$HERD_TORCH_VERSION"
export CCACHE_BASEDIR="$HERD_ROOT"
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE=5G
# Precompiled headers: ccache only caches such compiles with this sloppiness.
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime

# herd_configure BUILD_DIR [CMAKE_ARGS...]: the project's one CMake configure (Release, Ninja,
# ccache, torch from the venv); scripts/setup.sh (build/) and scripts/gpu_bundle.sh use it.
herd_configure() {
  local dir="$1" prefix
  shift
  prefix="$("$HERD_VENV/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null)"
  mkdir -p "$CCACHE_DIR"
  cmake -S "$HERD_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache -DHERD_PYTHON="$HERD_VENV/bin/python" "$@" \
    >"$HERD_CACHE/configure.log" 2>&1 || {
    tail -40 "$HERD_CACHE/configure.log" >&2
    echo "error: cmake configure of $dir failed (log: $HERD_CACHE/configure.log)" >&2
    return 1
  }
}
