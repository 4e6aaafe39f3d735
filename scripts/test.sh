#!/usr/bin/env bash
# README command 2: set up and build (tests included), then run the whole suite with ctest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$HERD_ROOT/scripts/setup.sh"
cd "$HERD_BUILD"
ctest --output-on-failure --timeout 900 -j"${HERD_TEST_JOBS:-2}" "$@"
