#!/usr/bin/env bash
# libFuzzer over herd's input readers (docs/reliability.md): the config loader, the token shard
# reader, the checkpoint manifest check and the safetensors reader, each built with Debian's
# clang-14 (-fsanitize=fuzzer,address,undefined) into build-fuzz/ — not part of the default
# g++ build — and run for FUZZ_SECONDS (default 60) each from a seed corpus of valid inputs.
# Usage: scripts/fuzz.sh [TARGET...]   (config shard ckpt_manifest safetensors; default: all)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
CXX=clang++-14
command -v $CXX >/dev/null || {
  echo "[fuzz] installing clang-14 (libFuzzer)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  $SUDO apt-get install -y -qq --no-install-recommends clang-14 </dev/null >/dev/null
}
OUT="$HERD_ROOT/build-fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
mkdir -p "$OUT"
TORCH="$("$HERD_VENV/bin/python" -c 'import importlib.util as u; print(u.find_spec("torch").submodule_search_locations[0])')"
FLAGS=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -I"$HERD_ROOT/src" -I"$HERD_ROOT" -DHERD_VERSION=\"fuzz\")
S="$HERD_ROOT/src"
declare -A SOURCES=(
  [config]="$S/config/config.cpp $S/config/node.cpp $S/config/schema.cpp"
  [shard]="$S/data/text/shard.cpp $S/data/mapped_file.cpp $S/data/staged_file.cpp $S/data/file_util.cpp"
  [ckpt_manifest]="$S/ckpt/manifest.cpp"
  [safetensors]="$S/io/safetensors.cpp"
)
declare -A LIBS=(
  [config]="-lyaml-cpp"
  [shard]=""
  [ckpt_manifest]="-lyaml-cpp -lxxhash"
  [safetensors]="-lyaml-cpp -isystem $TORCH/include -isystem $TORCH/include/torch/csrc/api/include
    -L$TORCH/lib -Wl,-rpath,$TORCH/lib -ltorch -ltorch_cpu -lc10"
)
seed() {  # valid inputs to start from
  local t=$1 c="$OUT/corpus/$t"
  mkdir -p "$c"
  case $t in
    config) cp "$HERD_ROOT"/configs/*.yaml "$c"/ ;;
    shard) printf '\x28\xd4\x34\x01\x01\x00\x00\x00\x04\x00\x00\x00' >"$c/u16"
      head -c 1012 /dev/zero >>"$c/u16"; printf '\x01\x00\x02\x00\x03\x00\x04\x00' >>"$c/u16" ;;
    ckpt_manifest) printf 'format: herd-checkpoint-manifest\nhash: xxh3_64\nfiles:\n  model.pt: {size: 7, xxh3: "0000000000000000"}\n' >"$c/m" ;;
    safetensors) printf '\x3a\x00\x00\x00\x00\x00\x00\x00{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}    ' >"$c/s"
      head -c 8 /dev/zero >>"$c/s" ;;
  esac
}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(config shard ckpt_manifest safetensors)
for t in "${targets[@]}"; do
  echo "[fuzz] building $t"
  # shellcheck disable=SC2086
  $CXX "${FLAGS[@]}" "$HERD_ROOT/tests/fuzz/fuzz_$t.cpp" ${SOURCES[$t]} ${LIBS[$t]} -o "$OUT/fuzz_$t"
  seed "$t"
  mkdir -p "$OUT/crashes/$t"
  echo "[fuzz] running $t for ${SECONDS_EACH}s"
  set +e
  ASAN_OPTIONS=detect_leaks=0 "$OUT/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=4096 \
    -artifact_prefix="$OUT/crashes/$t/" -print_final_stats=1 "$OUT/corpus/$t" >"$OUT/$t.log" 2>&1
  rc=$?
  set -e
  runs=$(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$OUT/$t.log" | grep -oE '[0-9]+$' || echo "?")
  cov=$(grep -oE 'cov: [0-9]+' "$OUT/$t.log" | tail -1 || true)
  if [ $rc -eq 0 ]; then
    echo "[fuzz] $t: $runs inputs, $cov, no crash"
  else
    echo "[fuzz] $t: CRASH after $runs inputs (exit $rc); see $OUT/$t.log and $OUT/crashes/$t/"
    grep -m3 -E 'ERROR|SUMMARY|threw|terminate' "$OUT/$t.log" || true
    exit 1
  fi
done
