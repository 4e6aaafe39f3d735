#!/usr/bin/env bash
# ctest reproduce.synthetics_quick (cpu): scripts/reproduce synthetics --quick into a scratch
# folder, as a user would. Asserts: the page lands in --out (docs/results.md untouched) with the
# Table 1 layout (a header and one line per mixer row), a verdict sentence per claim and its two
# plots; every run finished; a rerun skips every finished run and starts none; bad arguments
# (one seed without --quick, an unknown suite) fail with a one-line error and exit 2; the
# verdict rules give the expected verdict on crafted seed values.
#   HERD_BIN=build/herd tests/reproduce_test.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/herd-reproduce-test.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
FAILS=0
check() {  # DESCRIPTION COMMAND...: one assertion
  if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; FAILS=$((FAILS + 1)); fi
}
REPRODUCE="$HERD_ROOT/scripts/reproduce"
DOCS_PAGE="$HERD_ROOT/docs/results.md"
docs_before="$(stat -c %Y "$DOCS_PAGE" 2>/dev/null || echo none)"

"$REPRODUCE" synthetics --quick --out "$SCRATCH/out" >"$SCRATCH/first.log" 2>&1
check "first run exits 0" test $? -eq 0 || tail -30 "$SCRATCH/first.log"
PAGE="$SCRATCH/out/results.md"
check "the page is written into --out" test -s "$PAGE"
check "docs/results.md is left alone" test "$(stat -c %Y "$DOCS_PAGE" 2>/dev/null || echo none)" = "$docs_before"
check "the page says it is generated" grep -q "never edited by hand" "$PAGE"
check "Table 1 header" grep -qF "| model | induction head | associative recall |" "$PAGE"
rows="$(grep -cE '^\| (attention|H3|S4D|Hyena|M2 \(causal\)|H3-hybrid[^|]*) \| [0-9]' "$PAGE")"
check "one table line per mixer row (6, got $rows)" test "$rows" -eq 6
verdicts="$(grep -cE '^- .*: \*\*(reproduced in ordering|not reproduced|inconclusive at this scale)\*\* \(.*mean' "$PAGE")"
check "a verdict sentence per claim (2, got $verdicts)" test "$verdicts" -eq 2
check "the bar plot exists" test -s "$SCRATCH/out/img/results/synthetics-final.png"
check "the curves plot exists" test -s "$SCRATCH/out/img/results/synthetics-curves.png"
finished="$(build_list="$("${HERD_BIN:-$HERD_ROOT/build/herd}" runs list "$SCRATCH/out" --tsv)"; echo "$build_list" | grep -c $'\tfinished\t')"
check "all 12 runs finished (got $finished)" test "$finished" -eq 12

metrics="$SCRATCH/out/synthetics-induction-h3/seed-1/metrics.jsonl"
sum_before="$(md5sum <"$metrics")"
"$REPRODUCE" synthetics --quick --out "$SCRATCH/out" >"$SCRATCH/second.log" 2>&1
check "rerun exits 0" test $? -eq 0 || tail -30 "$SCRATCH/second.log"
skipped="$(grep -c 'finished -> skip' "$SCRATCH/second.log")"
check "rerun skips all 12 finished runs (got $skipped)" test "$skipped" -eq 12
check "rerun starts nothing" bash -c "! grep -qE -- '-> (start|resume)' '$SCRATCH/second.log'"
check "rerun leaves a finished run's metrics as they were" test "$(md5sum <"$metrics")" = "$sum_before"
check "rerun regenerates the page" grep -qF "over 2 invocation(s)" "$PAGE"

"$REPRODUCE" synthetics --seeds 1 --out "$SCRATCH/bad" >"$SCRATCH/bad.log" 2>&1
check "one seed without --quick exits 2" test $? -eq 2
check "... naming --seeds in one line" test "$(grep -c 'reproduce: error: --seeds 1' "$SCRATCH/bad.log")" -eq 1
"$REPRODUCE" nosuch --quick --out "$SCRATCH/bad" >"$SCRATCH/bad.log" 2>&1
check "an unknown suite exits 2 naming it" bash -c "test $? -eq 2 && grep -q \"suite 'nosuch'\" '$SCRATCH/bad.log'"

# The verdict rules on crafted seed values (accuracy in [0, 1]; loss lower is better).
verdicts_of() {
  "$HERD_VENV/bin/python" - "$HERD_ROOT/scripts" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from reproduce_page import verdict
names = {"a": "A", "b": "B", "c": "C"}
order = {"better": ["a", "b"], "worse": ["c"]}
match = {"kind": "at_least", "better": ["a"], "worse": ["c"]}
cases = [
    (order, {"a": [1.0, 0.98], "b": [0.6, 0.9], "c": [0.1, 0.3]}, True),    # separated
    (order, {"a": [1.0, 1.0], "b": [0.2, 0.9], "c": [0.1, 0.3]}, True),     # b overlaps c
    (order, {"a": [1.0, 1.0], "b": [0.1, 0.12], "c": [0.5, 0.6]}, True),    # c beats b always
    (order, {"a": [1.0, 1.0], "b": [0.9, 0.95], "c": [0.5]}, True),         # one seed of c
    (order, {"a": [0.31, 0.32], "b": [0.31, 0.32], "c": [0.30, 0.305]}, True),  # within 5 points
    (order, {"a": [2.0, 2.1], "b": [2.2, 2.3], "c": [2.5, 2.6]}, False),    # losses, lower wins
    (match, {"a": [0.80, 0.82], "c": [0.83, 0.84]}, True),                  # 2.5 points behind
    (match, {"a": [0.60, 0.62], "c": [0.83, 0.84]}, True),                  # far behind always
]
for claim, values, higher in cases:
    print(verdict(claim, values, higher, 100, names)[0])
PY
}
expected="reproduced in ordering
inconclusive at this scale
not reproduced
inconclusive at this scale
inconclusive at this scale
reproduced in ordering
reproduced in ordering
not reproduced"
got="$(verdicts_of)"
check "verdict rules on crafted values" test "$got" = "$expected" || echo "$got"

echo "$FAILS failure(s)"
test "$FAILS" -eq 0
