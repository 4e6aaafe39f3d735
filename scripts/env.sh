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
