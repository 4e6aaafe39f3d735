"""The table of scripts/bench/context_length.sh: per context-parallel degree C and length L,
the highest rank's peak tensor memory; then, for each measured C=1 peak taken as the memory
budget, the longest measured length that fits it with C=1 and with C=2."""
import json
import sys
from pathlib import Path

peak = {}  # (C, L) -> (highest rank's peak tensor MiB, step ms)
for path in Path(sys.argv[1]).glob("c*-L*.json"):
    c, l = (int(x) for x in path.stem[1:].split("-L"))
    r = json.loads(path.read_text())[0]
    ranks = [v for k, v in r.items() if k.endswith("_peak_tensor_mb") and k.startswith("rank")]
    peak[(c, l)] = (max(ranks) if ranks else r["peak_tensor_mb"], r["step_ms"])

print("| C | sequence length | per-rank peak tensor MiB | step s |")
print("|---|---|---|---|")
for (c, l), (mib, ms) in sorted(peak.items()):
    print(f"| {c} | {l:,} | {mib:.0f} | {ms / 1e3:.1f} |")
print()
for (c, l), (budget, _) in sorted(peak.items()):
    if c != 1:
        continue
    longest = {k: max((ll for (cc, ll), (m, _) in peak.items() if cc == k and m <= budget),
                      default=0) for k in (1, 2)}
    print(f"budget {budget:.0f} MiB per rank: longest measured C=1 {longest[1]:,}, "
          f"C=2 {longest[2]:,}")
