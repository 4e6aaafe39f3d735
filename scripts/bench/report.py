"""Markdown tables from one sitting of scripts/bench/run_all.sh (its OUT folder).

    python scripts/bench/report.py runs/bench/20261202-0111 > /tmp/tables.md

Prints: the machine (from info.txt and the measured sgemm peak), the herd vs PyTorch-eager
ratios (compare*.json), training steps (train-*.json, baseline rows when present), mixer
blocks fused / HERD_KERNELS=reference / baseline (blocks*.json), and every fused op
(ops.json). Ratios > 1 mean herd (or the fused path) is faster.
"""

import glob
import json
import os
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def machine(out):
    """date, cpu, torch and cuda from the first benchmark's header; threads from herd info."""
    keep = []
    for name, keys in (("ops.txt", ("date", "cpu", "torch", "cuda")), ("info.txt", ("threads",))):
        path = os.path.join(out, name)
        if os.path.exists(path):
            for line in open(path).read().splitlines():
                if line.split(" ", 1)[0] in keys and line not in keep:
                    keep.append(line)
    peaks = [load(p)[0]["peak_flops"] for p in sorted(glob.glob(os.path.join(out, "train-*.json")))
             if "baseline" not in p]
    if peaks:
        keep.append(f"sgemm    2048^3 float32 peak measured in each train run: "
                    f"{min(peaks) / 1e9:.0f}-{max(peaks) / 1e9:.0f} GFLOP/s")
    return "\n".join("    " + l for l in keep)


def compare_rows(out):
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "compare*.json"))):
        c = load(path)
        if c.get("gpt"):
            g = c["gpt"]
            rows.append((f"GPT training step, `{os.path.basename(g.get('config', '?'))}`"
                         f" ({g['herd']['units_per_step']} tokens)",
                         f"{g['herd']['units_per_s']:.0f} tok/s", f"{g['twin']['tokens_per_s']:.0f} tok/s",
                         g["speedup"], g.get("rounds", [g["speedup"]])))
        for m in c.get("mixers", []):
            rows.append((f"{m['mixer']} mixer layer fwd+bwd, L={m['herd']['L']}, d={m['herd']['d_model']}",
                         f"{m['herd']['fwd_bwd_ms']:.0f} ms", f"{m['twin']['fwd_bwd_ms']:.0f} ms",
                         m["speedup"], m.get("rounds", [m["speedup"]])))
    if not rows:
        return ""
    s = "| what | herd | PyTorch eager twin | herd speedup (median) | each round |\n|---|---|---|---|---|\n"
    for what, h, t, r, rounds in rows:
        s += f"| {what} | {h} | {t} | **{r:.2f}x** | {', '.join(f'{x:.2f}' for x in rounds)} |\n"
    return s


def train_rows(out):
    s = ("| run | tokens/step | median step | tokens/s | achieved GFLOP/s | sgemm peak GFLOP/s | MFU |"
         " peak RSS |\n|---|---|---|---|---|---|---|---|\n")
    any_row = False
    for path in sorted(glob.glob(os.path.join(out, "train-*.json"))):
        t = load(path)[0]
        name = os.path.basename(path)[len("train-"):-len(".json")]
        s += (f"| {name} | {t['units_per_step']} | {t['step_ms']:.0f} ms | {t['units_per_s']:.0f} |"
              f" {t['achieved_flops'] / 1e9:.1f} | {t['peak_flops'] / 1e9:.0f} | {100 * t['mfu']:.1f}% |"
              f" {t['peak_rss_mb']:.0f} MiB |\n")
        any_row = True
    return s if any_row else ""


def blocks_table(out):
    cols = [("fused", "blocks.json"), ("HERD_KERNELS=reference", "blocks-reference.json"),
            ("baseline", "blocks-baseline.json")]
    have = [(n, load(os.path.join(out, f))) for n, f in cols if os.path.exists(os.path.join(out, f))]
    if not have:
        return ""
    index = {n: {(r["mixer"], r["L"]): r for r in rows} for n, rows in have}
    keys = [(r["mixer"], r["L"]) for r in have[0][1]]
    head = "| mixer | L |" + "".join(f" {n} fwd+bwd ms |" for n, _ in have)
    head += " fused fwd ms | fused peak MB |"
    if "baseline" in index:
        head += " baseline peak MB | speedup over baseline |"
    s = head + "\n|" + "---|" * (head.count("|") - 1) + "\n"
    for k in keys:
        f = index["fused"][k]
        s += f"| {k[0]} | {k[1]} |"
        for n, _ in have:
            r = index[n].get(k)
            s += f" {r['fwd_bwd_ms']:.0f} |" if r else " — |"
        s += f" {f['fwd_ms']:.0f} | {f['peak_mb']:.0f} |"
        if "baseline" in index:
            b = index["baseline"].get(k)
            s += (f" {b['peak_mb']:.0f} | {b['fwd_bwd_ms'] / f['fwd_bwd_ms']:.2f}x |" if b
                  else " — | — |")
        s += "\n"
    return s


def ops_table(out):
    path = os.path.join(out, "ops.json")
    if not os.path.exists(path):
        return ""
    s = "| op | shape (float32) | pass | reference ms | fused ms | speedup |\n|---|---|---|---|---|---|\n"
    for r in load(path):
        s += (f"| {r['op']} | {r['shape']} | {r['pass']} | {r['reference_ms']:.2f} | {r['fused_ms']:.2f} |"
              f" {r['speedup']:.2f}x |\n")
    return s


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    print(f"Sitting: `{out}`\n\n{machine(out)}\n")
    for title, body in (("herd vs its PyTorch-eager twins", compare_rows(out)),
                        ("Training steps (`herd bench train`)", train_rows(out)),
                        ("Mixer blocks alone (`herd bench blocks`, d=768, B=1)", blocks_table(out)),
                        ("Fused ops (`herd bench ops`)", ops_table(out))):
        if body:
            print(f"### {title}\n\n{body}")


if __name__ == "__main__":
    main()
