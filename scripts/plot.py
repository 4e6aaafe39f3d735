"""scripts/plot RUN... [--metric val_loss] [--x step|tokens|flops|time] --out FILE.png

Curves of one or many run directories from their metrics.jsonl. --metric is any key of the
records (loss, lr, grad_norm, tokens_per_s, val_loss, val_accuracy, ...).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herd_runs  # noqa: E402


def series(run_dir, metric, x, flops_per_token=None):
    """(xs, ys) of one metric of a run; eval records take tokens/time of their train step."""
    train, evals = herd_runs.read_metrics(run_dir)
    by_step = {r["step"]: r for r in train}
    records = train if any(metric in r for r in train) else [
        dict(by_step.get(e["step"], {}), **e) for e in evals]
    records = [r for r in records if r.get(metric) is not None]
    if x == "flops" and flops_per_token is None:
        flops_per_token = herd_runs.flops_per_token(run_dir)
    xs = herd_runs.x_values(records, x, flops_per_token)
    return xs, [r[metric] for r in records]


def draw(runs, metric, x, out, title=None, flops_per_token=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    drawn = 0
    for run in runs:
        xs, ys = series(run, metric, x, flops_per_token)
        if not ys:
            continue
        style = "o-" if len(ys) < 20 else "-"
        ax.plot(xs, ys, style, label=os.path.basename(os.path.normpath(run)), markersize=3)
        drawn += 1
    if drawn == 0:
        plt.close(fig)
        raise SystemExit(f"plot: no run has {metric} records")
    ax.set_xlabel({"time": "seconds", "flops": "training FLOPs"}.get(x, x))
    ax.set_ylabel(metric)
    if metric.endswith("loss"):
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or metric)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return drawn


def compare(runs, out, title):
    """A sweep's comparison: validation metric when the runs have one, else train loss."""
    metric = "loss"
    for run in runs:
        m, _ = herd_runs.eval_metric(herd_runs.read_metrics(run)[1])
        if m:
            metric = m
            break
    return draw(runs, metric, "step", out, title=f"{title}: {metric}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--metric", default="loss")
    p.add_argument("--x", default="step", choices=["step", "tokens", "flops", "time"])
    p.add_argument("--flops-per-token", type=float, default=None,
                   help="for --x flops (default: what `herd config check` counts for the run)")
    p.add_argument("--out", required=True, help="FILE.png")
    args = p.parse_args()
    for run in args.runs:
        if not os.path.exists(os.path.join(run, "metrics.jsonl")):
            raise SystemExit(f"plot: {run}: no metrics.jsonl (not a run directory?)")
    n = draw(args.runs, args.metric, args.x, args.out, flops_per_token=args.flops_per_token)
    print(f"plot: {n} run(s) -> {args.out}")


if __name__ == "__main__":
    main()
