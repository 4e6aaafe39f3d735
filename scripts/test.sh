#!/usr/bin/env bash
# README command 2: set up and build (tests included), then run the whole suite with ctest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$HERD_ROOT/scripts/setup.sh"
cd "$HERD_BUILD"
# The `slow` label (crash soak, fuzzing: docs/reliability.md) runs only with HERD_SLOW=1.
SKIP_SLOW=(-LE slow); [ "${HERD_SLOW:-0}" = 1 ] && SKIP_SLOW=()
ctest --output-on-failure --timeout 900 -j"${HERD_TEST_JOBS:-2}" "${SKIP_SLOW[@]}" "$@"
