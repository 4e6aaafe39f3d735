"""The table of scripts/bench/context_length.sh: per run (context-parallel degree C, length L,
train.zero, steps run) the highest rank's peak tensor memory and the median step time; then,
taking each steady-state C=1 peak (runs of 2 or more steps) as the memory budget, the longest
steady-state C=2 run that fits it."""
import json
import re
import sys
from pathlib import Path

runs = []  # (C, L, zero, steps, highest rank's peak tensor MiB, step s)
for path in Path(sys.argv[1]).glob("c*-L*.json"):
    m = re.fullmatch(r"c(\d+)-L(\d+)(?:-zero(\d))?-steps(\d+)", path.stem)
    if not m:
        continue
    c, l, zero, steps = int(m[1]), int(m[2]), int(m[3] or 0), int(m[4])
    r = json.loads(path.read_text())[0]
    ranks = [v for k, v in r.items() if k.startswith("rank") and k.endswith("_peak_tensor_mb")]
    runs.append((c, l, zero, steps, max(ranks) if ranks else r["peak_tensor_mb"],
                 r["step_ms"] / 1e3))
runs.sort()

print("| C | sequence length | train.zero | steps run | per-rank peak tensor MiB | step s |")
print("|---|---|---|---|---|---|")
for c, l, zero, steps, mib, s in runs:
    print(f"| {c} | {l:,} | {zero} | {steps} | {mib:.0f} | {s:.1f} |")
print()
for c, l, zero, steps, budget, _ in runs:
    if c == 1 and steps >= 2:
        fits = [(ll, zz) for cc, ll, zz, ss, m, _ in runs if cc == 2 and ss >= 2 and m <= budget]
        best = max(fits, default=None)
        print(f"budget {budget:.0f} MiB per rank (C=1 at {l:,}): longest steady-state C=2 run "
              f"within it: " + (f"{best[0]:,} (zero {best[1]})" if best else "none measured"))
