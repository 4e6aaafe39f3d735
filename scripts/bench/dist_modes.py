"""The table of scripts/bench/dist_modes.sh: per model and mode, the median step time over
rounds, its ratio to plain data parallel's (taken within each round, then the median), rank 0's
peak tensor memory, and the sgemm peak each run measured."""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

runs = defaultdict(dict)  # (model, mode) -> round -> record
for path in sorted(Path(sys.argv[1]).glob("*-r*.json")):
    model_mode, rnd = path.stem.rsplit("-r", 1)
    model, mode = model_mode.rsplit("-", 1)
    runs[(model, mode)][int(rnd)] = json.loads(path.read_text())[0]

print("| model | mode | step ms (median of rounds) | vs dp (per round) | rank 0 peak tensor MiB "
      "| sgemm GFLOP/s (runs' range) |")
print("|---|---|---|---|---|---|")
for model in sorted({m for m, _ in runs}):
    base = runs.get((model, "dp"), {})
    for mode in ("dp", "zero1", "zero2", "cp2"):
        r = runs.get((model, mode))
        if not r:
            continue
        ms = statistics.median(x["step_ms"] for x in r.values())
        ratios = [x["step_ms"] / base[k]["step_ms"] for k, x in sorted(r.items()) if k in base]
        peaks = [x["peak_flops"] / 1e9 for x in r.values()]
        mem = max(x.get("rank0_peak_tensor_mb", x["peak_tensor_mb"]) for x in r.values())
        print(f"| {model} | {mode} | {ms:.0f} | {statistics.median(ratios):.3f} "
              f"({', '.join(f'{q:.3f}' for q in ratios)}) | {mem:.0f} "
              f"| {min(peaks):.0f}-{max(peaks):.0f} |")
