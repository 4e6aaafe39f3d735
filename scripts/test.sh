#!/usr/bin/env bash
# README command 2: set up and build (tests included), then run the suite with ctest.
# By default every test but those labelled `slow`; labels: cpu, gpu, dist, slow.
#   scripts/test.sh                 all but slow
#   scripts/test.sh --all           everything
#   scripts/test.sh -L slow         only the slow ones (any ctest arguments pass through)
#   scripts/test.sh -L gpu          the GPU tests (they skip without a device)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$HERD_ROOT/scripts/setup.sh"
cd "$HERD_BUILD"
# The `slow` label (crash soak, fuzzing: docs/reliability.md) runs only with --all, -L slow or HERD_SLOW=1.
select=(-LE slow)
[ "${HERD_SLOW:-0}" = 1 ] && select=()
if [ "${1:-}" = "--all" ]; then
  select=()
  shift
elif [[ " $* " == *" -L "* || " $* " == *" -LE "* ]]; then
  select=()
fi
ctest --output-on-failure --timeout 900 -j"${HERD_TEST_JOBS:-2}" "${select[@]}" "$@"
[ ${#select[@]} -gt 0 ] && echo "[test] skipped the tests labelled slow: scripts/test.sh -L slow runs them, --all runs everything"
exit 0
