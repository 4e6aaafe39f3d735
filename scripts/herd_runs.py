"""Reading herd run directories from Python (scripts/sweep, scripts/plot, scripts/tb_follow).

A run directory holds config.yaml (the resolved config), metrics.jsonl (one JSON object per
train step, {"step", "loss", "lr", "grad_norm", "tokens_per_s", "tokens", ...}, and one per
eval, {"step", "val_loss", ...}) and checkpoints/. A run's status comes from `herd runs list`
so that the rules live in one place (src/cli/runs.cpp).
"""

import csv
import io
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def herd_binary():
    return os.environ.get("HERD_BIN") or os.path.join(
        os.environ.get("HERD_BUILD", os.path.join(ROOT, "build")), "herd")


def read_metrics(run_dir):
    """(train records, eval records) of metrics.jsonl; a torn last line is skipped."""
    train, evals = [], []
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return train, evals
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            (train if "loss" in rec else evals).append(rec)
    # A resumed run appends from its checkpoint's step: keep the newest record of each step.
    def dedup(records):
        by_step = {}
        for r in records:
            by_step[r["step"]] = r
        return [by_step[s] for s in sorted(by_step)]
    return dedup(train), dedup(evals)


def base_sha1(base):
    """The SHA-1 of a sweep's base config file, which sweep_run.json records."""
    import hashlib
    with open(base, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def learned_overrides(overrides):
    """The overrides that decide what a run learns: all but train.threads."""
    return {k: v for k, v in overrides.items() if k != "train.threads"}


def recipe_change(run_dir, base, overrides):
    """How run_dir's recorded recipe (sweep_run.json: base_sha1 and overrides) differs from
    this one (a short text), or None when it is the same or was never recorded (runs from
    before sweeps recorded it)."""
    path = os.path.join(run_dir, "sweep_run.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        old = json.load(f)
    if "base_sha1" not in old:
        return None
    changes = []
    if old["base_sha1"] != base_sha1(base):
        changes.append(f"{os.path.basename(base)} edited")
    before, now = learned_overrides(old.get("overrides", {})), learned_overrides(overrides)
    keys = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if keys:
        changes.append("overrides " + ", ".join(keys))
    return "; ".join(changes) or None


def read_config(run_dir):
    import yaml
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return yaml.safe_load(f) or {}


def runs_list(parent):
    """The rows of `herd runs list PARENT --tsv` (runs up to three levels under parent)."""
    if not os.path.isdir(parent):
        return []
    out = subprocess.run([herd_binary(), "runs", "list", parent, "--tsv"], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"herd runs list {parent}: {out.stderr.strip()}")
    return list(csv.DictReader(io.StringIO(out.stdout), delimiter="\t"))


def statuses(parent):
    """{run dir name: row of `herd runs list --tsv`} for the runs under parent."""
    return {os.path.basename(os.path.normpath(r["run"])): r for r in runs_list(parent)}


def statuses_by_path(parent):
    """{absolute run dir: status} for every run under parent, from one `herd runs list`."""
    return {os.path.abspath(r["run"]): r["status"] for r in runs_list(parent)}


def eval_metric(evals):
    """The validation metric a run reports: ("val_loss", lower is better) or accuracy."""
    keys = set().union(*[r.keys() for r in evals]) if evals else set()
    if "val_loss" in keys:
        return "val_loss", min
    for k in sorted(keys):
        if k.startswith("val_") and "acc" in k:
            return k, max
    return None, None


def x_values(records, x, flops_per_token=None):
    """The x axis of records: step, tokens (or images), flops or time (seconds, from tokens/s)."""
    if x == "step":
        return [r["step"] for r in records]
    units = "tokens" if any("tokens" in r for r in records) else "images"
    if x == "tokens":
        return [r.get(units, 0) for r in records]
    if x == "flops":
        if not flops_per_token:
            raise SystemExit("--x flops needs the run's FLOPs per token (--flops-per-token)")
        return [r.get(units, 0) * flops_per_token for r in records]
    if x == "time":
        t, prev, out = 0.0, 0, []
        for r in records:
            rate = r.get(units + "_per_s") or 0
            done = r.get(units, 0)
            if rate > 0:
                t += (done - prev) / rate
            prev = done
            out.append(t)
        return out
    raise SystemExit(f"--x {x}: expected step, tokens, flops or time")


def status(run_dir):
    """The status `herd runs list` gives one run directory."""
    rows = statuses(run_dir)
    return next(iter(rows.values()), {}).get("status", "missing")


def model_counts(run_dir):
    """(parameters, training FLOPs per token) of a run's model, as `herd config check` counts
    them."""
    out = subprocess.run([herd_binary(), "config", "check", os.path.join(run_dir, "config.yaml")],
                         capture_output=True, text=True)
    params = flops = None
    for line in out.stdout.splitlines():
        if line.startswith("# parameters:"):
            params = int(line.split(":")[1].split()[0])
        if line.startswith("# training FLOPs per token:"):
            flops = float(line.split(":")[1].split()[0])
    if params is None or flops is None:
        raise RuntimeError(f"herd config check {run_dir}/config.yaml: {out.stderr.strip()}")
    return params, flops


def flops_per_token(run_dir):
    """Training FLOPs per token of a run's model, as `herd config check` counts them."""
    return model_counts(run_dir)[1]
