#!/usr/bin/env bash
# ctest gpu_bundle.relocated (slow): assembles the GPU bundle from the build under test
# (scripts/gpu_bundle.sh --no-build), moves it to a scratch folder outside the tree and runs its
# run.sh --quick there with no library path of its own (run.sh adds the bundle's lib and torch's
# folders) and python3 from the project's venv. Asserts: the bundle script refuses to finish
# above its size limit (lowered to 10 MiB for that); the bundle is under 60 MiB; the moved
# binaries' run path is $ORIGIN/lib and ldd resolves each of their libraries to the bundle or
# torch's folders (glibc and libstdc++/libgcc_s excepted); herd info, herd conformance on the
# golden files and CPU training pass; without a GPU every CUDA step is reported "no device" and
# run.sh exits 3 saying so (with one, run.sh passes); with no python's torch, or a library found
# nowhere, run.sh stops with exit 2 naming it.
#   tests/gpu_bundle_test.sh BUILD_DIR
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
source "$HERD_ROOT/scripts/gpu_libpath.sh"
BUILD="${1:?usage: gpu_bundle_test.sh BUILD_DIR}"
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/herd-bundle-test.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
FAILS=0
check() {  # DESCRIPTION COMMAND...: one assertion
  if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; FAILS=$((FAILS + 1)); fi
}

# --- Assemble, then move: nothing may still point at the tree or the first folder.
EXTRA=()
if [[ "$(sed -n 's/^CMAKE_CUDA_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt")" != /* ]]; then
  EXTRA=(--allow-no-cuda)
  echo "note: $BUILD was configured without nvcc: bundling it without CUDA kernels"
fi
bash "$HERD_ROOT/scripts/gpu_bundle.sh" --no-build --build-dir "$BUILD" --out "$SCRATCH/made" "${EXTRA[@]}" ||
  { echo "FAIL: scripts/gpu_bundle.sh"; exit 1; }
check "the assembled bundle has run.sh" test -x "$SCRATCH/made/run.sh"
HERD_BUNDLE_MAX_MIB=10 bash "$HERD_ROOT/scripts/gpu_bundle.sh" --no-build --build-dir "$BUILD" \
  --out "$SCRATCH/too-big" "${EXTRA[@]}" >"$SCRATCH/too-big.log" 2>&1
RC=$?
check "above its size limit the bundle script fails (exit $RC)" test "$RC" -ne 0
check "... saying so" grep -q "above the 10 MiB limit" "$SCRATCH/too-big.log"
check "... and leaves no run.sh" test ! -e "$SCRATCH/too-big/run.sh"
rm -rf "$SCRATCH/too-big"
mkdir "$SCRATCH/elsewhere"
cp -a "$SCRATCH/made" "$SCRATCH/elsewhere/gpu-bundle" && rm -rf "$SCRATCH/made"
B="$SCRATCH/elsewhere/gpu-bundle"

SIZE="$(du -sb "$B" | cut -f1)"
check "the bundle ($SIZE bytes) is under 60 MiB" test "$SIZE" -lt $((60 * 1024 * 1024))
for bin in herd herd_tests; do
  check "$bin's run path is \$ORIGIN/lib" grep -qF 'path: [$ORIGIN/lib]' <(readelf -d "$B/$bin")
done

torch_libs "$HERD_VENV/bin/python" || { echo "FAIL: cannot import torch: $TORCH_ERROR"; exit 1; }
STRAY=()
while read -r name path; do
  machine_lib "$name" && continue  # glibc, libstdc++, libgcc_s
  [[ "$(realpath -m "$path")" == "$B/lib/"* ]] && continue
  in_torch "$path" && continue
  STRAY+=("$name=$path")
done < <(LD_LIBRARY_PATH="$B/lib:$TORCH_LIB_PATH" ldd_pairs "$B/herd" "$B/herd_tests")
check "ldd resolves every library to the bundle or torch's folders (stray: ${STRAY[*]:-none})" \
  test "${#STRAY[@]}" -eq 0
check "the bundle holds libraries (lib/ is not empty)" test -n "$(ls "$B/lib")"

# --- run.sh --quick from the scratch folder, python3 being the venv's.
(cd "$SCRATCH" && env -u LD_LIBRARY_PATH -u OUT -u HERD_PYTHON PATH="$HERD_VENV/bin:/usr/bin:/bin" \
  bash "$B/run.sh" --quick --out "$SCRATCH/out") >"$SCRATCH/run.log" 2>&1
RC=$?
cat "$SCRATCH/run.log"
check "results.json, results.txt and log.txt are written" \
  test -s "$SCRATCH/out/results.json" -a -s "$SCRATCH/out/results.txt" -a -s "$SCRATCH/out/log.txt"
for s in info conformance train-cpu; do
  check "step $s passed" grep -qE "^$s +cpu +pass " "$SCRATCH/out/results.txt"
done
check "every CPU step passed (conformance of each golden sub-folder too)" \
  test "$(grep -E '^[a-z0-9-]+ +cpu ' "$SCRATCH/out/results.txt" | grep -cv ' pass ')" -eq 0
GOLDEN_FILES="$(find "$B/golden" -name '*.safetensors' | wc -l)"
check "conformance passed every golden file ($GOLDEN_FILES) in float64 and float32" \
  test "$(grep -c '^PASS ' "$SCRATCH/out/log.txt")" -eq $((2 * GOLDEN_FILES)) -a "$GOLDEN_FILES" -gt 0
if grep -qE '^cuda +available' "$SCRATCH/out/log.txt"; then
  echo "note: this machine has a CUDA device: run.sh must pass"
  check "run.sh exits 0 on a GPU machine (exit $RC)" test "$RC" -eq 0
else
  check "run.sh exits 3 without a device (exit $RC)" test "$RC" -eq 3
  check "run.sh says so" grep -q 'error: no device' "$SCRATCH/run.log"
  check "every CUDA step is reported \"no device\"" \
    test "$(grep -cE '^[a-z0-9-]+ +cuda +no-device ' "$SCRATCH/out/results.txt")" -ge 2 -a \
    "$(grep -E '^[a-z0-9-]+ +cuda ' "$SCRATCH/out/results.txt" | grep -cv ' no-device ')" -eq 0
fi
# --- Machines the bundle cannot run on: exit 2 before any check, naming what is missing.
run_broken() {  # LOG ENV...: run.sh --quick with these variables, its exit status
  (cd "$SCRATCH" && env -u LD_LIBRARY_PATH -u OUT PATH="$HERD_VENV/bin:/usr/bin:/bin" "$@" \
    bash "$B/run.sh" --quick --out "$SCRATCH/out-broken") >"$SCRATCH/broken.log" 2>&1
}
run_broken HERD_PYTHON="$SCRATCH/no-python"
RC=$?
check "no python with torch: exit 2 (exit $RC)" test "$RC" -eq 2
check "... saying so" grep -q "cannot import torch with $SCRATCH/no-python" "$SCRATCH/broken.log"
cp "$B/herd" "$SCRATCH/herd.good"
patchelf --add-needed libherd_bundle_test_missing.so.1 "$B/herd"
run_broken
RC=$?
check "a library found nowhere: exit 2 (exit $RC)" test "$RC" -eq 2
check "... naming the library" grep -q "not found: libherd_bundle_test_missing.so.1" "$SCRATCH/broken.log"
check "... before any check ran" test ! -e "$SCRATCH/out-broken/results.json" -o -z \
  "$(grep -E '^[a-z0-9-]+ +(cpu|cuda) ' "$SCRATCH/out-broken/results.txt")"
mv "$SCRATCH/herd.good" "$B/herd"

echo "$FAILS failed assertions"
((FAILS == 0))
