#!/usr/bin/env bash
# Assembles gpu-bundle/ (git-ignored): herd and herd_tests built Release with the CUDA kernels
# for sm_80 and sm_90, every shared library they load that neither glibc nor python's torch
# provides (found by ldd from the binaries themselves), the configs, the golden files and a
# prepared dataset, so that a bare, offline GPU machine with python3 + torch runs every CUDA
# check in one device call: gpu-bundle/run.sh (scripts/gpu_run.sh; docs/benchmarks.md "GPU").
#
#   scripts/gpu_bundle.sh [--out DIR] [--build-dir DIR] [--no-build] [--allow-no-cuda]
#
# The binaries come from build/ when it is configured Release with nvcc (scripts/setup.sh does
# that wherever nvcc exists), else from a second build in build-bundle/ configured the same way.
# HERD_BUILD_LOCK=FILE takes that flock around the build. glibc, libstdc++ and libgcc_s come
# from the machine (bundle.env names the versions they must have; run.sh checks them): Debian
# 12's libstdc++ asks for glibc 2.36, the rest of the bundle for 2.34, so carrying it would
# only shut out older machines whose own libstdc++ serves. torch's own libraries (libtorch*,
# libc10*, its libgomp, the nvidia wheels) are not copied either: run.sh takes them from
# python3's torch there. Refuses to finish above 60 MiB.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$HERD_ROOT/scripts/gpu_libpath.sh"

BUNDLE="$HERD_ROOT/gpu-bundle"
BUILD=""
DO_BUILD=1
NEED_CUDA=1
MAX_MIB="${HERD_BUNDLE_MAX_MIB:-60}"  # what the device tool carries (64 MiB) less the tree
GOLDEN="${HERD_GOLDEN_DIR:-$HERD_ROOT/../shared/golden}"
DATA_CACHE="$HERD_ROOT/runs/data/fortunes"  # the quickstart corpus (scripts/prepare_fortunes.sh)

die() {
  echo "gpu_bundle: error: $*" >&2
  exit 1
}
trap 'echo "gpu_bundle: error: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
while (($#)); do
  case "$1" in
    --out) BUNDLE="${2:?--out needs a folder}"; shift 2 ;;
    --build-dir) BUILD="${2:?--build-dir needs a folder}"; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --allow-no-cuda) NEED_CUDA=0; shift ;;
    -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument \"$1\" (expected --out DIR, --build-dir DIR, --no-build or --allow-no-cuda)" ;;
  esac
done

for tool in patchelf objcopy objdump strings ldd; do
  command -v "$tool" >/dev/null || die "$tool is not installed (scripts/setup.sh installs patchelf and binutils)"
done

cache_value() {  # BUILD KEY: a CMakeCache.txt entry
  sed -n "s/^$2:[A-Z]*=//p" "$1/CMakeCache.txt" 2>/dev/null | head -n 1
}
# Release and configured with nvcc: what the bundle needs (the architectures are checked on the
# binary itself once built).
cuda_release_build() {
  [ "$(cache_value "$1" CMAKE_BUILD_TYPE)" = Release ] &&
    [[ "$(cache_value "$1" CMAKE_CUDA_COMPILER)" == /* ]]
}

if [ -z "$BUILD" ]; then
  BUILD="$HERD_BUILD"
  if ! cuda_release_build "$BUILD"; then
    BUILD="$HERD_ROOT/build-bundle"
    echo "gpu_bundle: $HERD_BUILD is not a Release build with nvcc; building $BUILD"
    [ -f "$BUILD/build.ninja" ] || herd_configure "$BUILD" -DHERD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="80;90"
  fi
fi
BUILD="$(cd "$BUILD" && pwd)" || die "build folder $BUILD does not exist"
if ((DO_BUILD)); then
  echo "gpu_bundle: building herd and herd_tests in $BUILD"
  ${HERD_BUILD_LOCK:+flock "$HERD_BUILD_LOCK"} cmake --build "$BUILD" --target herd herd_tests -- -j"$(nproc)" 2>&1 |
    { grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking|Precompiling)' || true; } || die "the build in $BUILD failed"
fi
HERD_BIN="$BUILD/herd"
TESTS_BIN="$BUILD/tests/herd_tests"
for f in "$HERD_BIN" "$TESTS_BIN"; do [ -x "$f" ] || die "$f is missing (build it, or drop --no-build)"; done
[ "$(cache_value "$BUILD" CMAKE_BUILD_TYPE)" = Release ] ||
  die "$BUILD/CMakeCache.txt CMAKE_BUILD_TYPE: expected Release, got \"$(cache_value "$BUILD" CMAKE_BUILD_TYPE)\""

# The CUDA architectures actually compiled into herd: cuobjdump's list where the toolkit has
# it, else the "-arch sm_NN" each cubin of the .nv_fatbin section records.
NVCC="$(cache_value "$BUILD" CMAKE_CUDA_COMPILER)"
cuda_archs() {
  if [[ "$NVCC" == /* ]] && [ -x "$(dirname "$NVCC")/cuobjdump" ]; then
    "$(dirname "$NVCC")/cuobjdump" --list-elf "$1" 2>/dev/null | grep -o 'sm_[0-9]*'
  else
    local sec
    sec="$(mktemp)"
    objcopy -O binary --only-section=.nv_fatbin "$1" "$sec" 2>/dev/null &&
      strings -a "$sec" | grep -oE -- '-arch sm_[0-9]+' | grep -o 'sm_[0-9]*'
    rm -f "$sec"
  fi | sort -u | tr '\n' ' '
}
ARCHS="$(cuda_archs "$HERD_BIN" || true)"
ARCHS="${ARCHS% }"
if ((NEED_CUDA)); then
  for a in sm_80 sm_90; do
    [[ " $ARCHS " == *" $a "* ]] || die "$HERD_BIN has no $a kernels (found: ${ARCHS:-none}); configure with nvcc (CMAKE_CUDA_ARCHITECTURES 80;90), or --allow-no-cuda for a CPU-only bundle"
  done
else
  echo "gpu_bundle: warning: CUDA kernels in this bundle: ${ARCHS:-none}"
fi

torch_libs "$HERD_VENV/bin/python" || die "cannot import torch from $HERD_VENV/bin/python: $TORCH_ERROR (run scripts/setup.sh)"
ls "$GOLDEN"/*.safetensors >/dev/null 2>&1 || die "no golden files (*.safetensors) in $GOLDEN (set HERD_GOLDEN_DIR)"
echo "gpu_bundle: preparing the fortunes dataset in $DATA_CACHE (skipped when done)"
HERD_BUILD="$BUILD" bash "$HERD_ROOT/scripts/prepare_fortunes.sh" "$DATA_CACHE" >/dev/null

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/lib" "$BUNDLE/data"
cp "$HERD_BIN" "$TESTS_BIN" "$BUNDLE/"
# Release builds carry no debug info; the symbol tables go too (the dynamic ones stay).
strip --strip-unneeded "$BUNDLE/herd" "$BUNDLE/herd_tests"

# Every library the loader resolves for the binaries with torch's folders first on the path, as
# run.sh will: glibc's and torch's stay behind, the rest is copied under its soname.
: >"$BUNDLE/libs.txt"
while read -r name path; do
  [ "$path" != not-found ] || die "$name (needed by herd) is not found here even with torch's folders on the path"
  machine_lib "$name" && continue
  in_torch "$path" && continue
  cp -L "$path" "$BUNDLE/lib/$name"
  echo "$name <- $path" >>"$BUNDLE/libs.txt"
done < <(LD_LIBRARY_PATH="$TORCH_LIB_PATH" ldd_pairs "$HERD_BIN" "$TESTS_BIN")
patchelf --set-rpath '$ORIGIN/lib' "$BUNDLE/herd" "$BUNDLE/herd_tests"
echo "gpu_bundle: bundled $(wc -l <"$BUNDLE/libs.txt") libraries: $(cut -d' ' -f1 "$BUNDLE/libs.txt" | tr '\n' ' ')"

# The newest glibc, libstdc++ and C++ ABI symbol versions anything in the bundle asks for.
newest_version() {  # PREFIX (GLIBC_, GLIBCXX_, CXXABI_)
  objdump -T "$BUNDLE/herd" "$BUNDLE/herd_tests" "$BUNDLE"/lib/* 2>/dev/null |
    grep -oE " \(?$1[0-9][0-9.]*" | sed "s/.*$1//" | sort -uV | tail -n 1
}
GLIBC_NEEDED="$(newest_version GLIBC_)"
GLIBCXX_NEEDED="$(newest_version GLIBCXX_)"
CXXABI_NEEDED="$(newest_version CXXABI_)"

cp -r "$HERD_ROOT/configs" "$BUNDLE/configs"
cp -r "$GOLDEN" "$BUNDLE/golden"
chmod -R u+w "$BUNDLE/golden"  # the shared folder is read-only; the bundle must be removable
cp -r "$DATA_CACHE" "$BUNDLE/data/fortunes"
cat >"$BUNDLE/bundle.env" <<EOF
# Written by scripts/gpu_bundle.sh; read by run.sh.
HERD_BUNDLE_COMMIT="$(git -C "$HERD_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$HERD_ROOT" diff --quiet HEAD 2>/dev/null || echo +changes)"
HERD_BUNDLE_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
HERD_BUNDLE_TORCH="$TORCH_VERSION"
HERD_BUNDLE_GLIBC="$GLIBC_NEEDED"
HERD_BUNDLE_GLIBCXX="$GLIBCXX_NEEDED"
HERD_BUNDLE_CXXABI="$CXXABI_NEEDED"
HERD_BUNDLE_CUDA_ARCHS="$ARCHS"
EOF

SIZE="$(du -sb "$BUNDLE" | cut -f1)"
MIB="$(awk -v b="$SIZE" 'BEGIN { printf "%.1f", b / 1048576 }')"
if ((SIZE > MAX_MIB * 1024 * 1024)); then
  echo "gpu_bundle: the largest files:" >&2
  find "$BUNDLE" -type f -printf '%s %p\n' | sort -rn | head -n 8 >&2
  die "the bundle is $MIB MiB, above the $MAX_MIB MiB limit (the device tool carries 64 MiB at most); $BUNDLE has no run.sh"
fi
# run.sh last: a bundle that failed above cannot be run by mistake.
cp "$HERD_ROOT/scripts/gpu_libpath.sh" "$BUNDLE/libpath.sh"
cp "$HERD_ROOT/scripts/gpu_run.sh" "$BUNDLE/run.sh"
chmod +x "$BUNDLE/run.sh"
echo "gpu_bundle: $BUNDLE is $MIB MiB (limit $MAX_MIB): herd from $BUILD (CUDA: ${ARCHS:-none}), torch $TORCH_VERSION; the machine's glibc >= $GLIBC_NEEDED, libstdc++ >= GLIBCXX_$GLIBCXX_NEEDED"
