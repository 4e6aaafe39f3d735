"""Plots `herd bench blocks --json` files: forward+backward time against sequence length,
one line per mixer (solid: the first file; dashed: further files, e.g. a "before" run).

    python scripts/bench/plot_blocks.py runs/bench/blocks.json --out docs/img/blocks-cpu.png
    python scripts/bench/plot_blocks.py after.json before.json --labels fused,reference --out x.png
"""

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("json", nargs="+", help="herd bench blocks --json outputs")
    p.add_argument("--labels", help="comma-separated label per file")
    p.add_argument("--metric", default="fwd_bwd_ms", choices=["fwd_ms", "fwd_bwd_ms", "peak_mb"])
    p.add_argument("--title", default="")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    labels = a.labels.split(",") if a.labels else [os.path.basename(f) for f in a.json]
    if len(labels) != len(a.json):
        raise SystemExit("plot_blocks: --labels needs one label per file")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {}
    for i, (path, label) in enumerate(zip(a.json, labels)):
        rows = json.load(open(path))
        for mixer in dict.fromkeys(r["mixer"] for r in rows):
            pts = sorted((r["L"], r[a.metric]) for r in rows if r["mixer"] == mixer)
            color = colors.setdefault(mixer, f"C{len(colors)}")
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", color=color,
                    linestyle="-" if i == 0 else "--",
                    label=f"{mixer}" + (f" ({label})" if len(a.json) > 1 else ""))
    first = json.load(open(a.json[0]))[0]
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length L")
    ax.set_ylabel({"fwd_ms": "forward ms", "fwd_bwd_ms": "forward + backward ms",
                   "peak_mb": "peak memory growth MB"}[a.metric])
    ax.set_title(a.title or f"one mixer block, d_model {first['d_model']}, batch {first['batch']}, "
                 f"{first['dtype']}, {first['device']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    fig.savefig(a.out, dpi=120)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
