"""scripts/reproduce [SUITE...|all] [--quick] [--seeds N] [--out DIR]: the seeds' experiments.

Each suite is a file configs/science/SUITE.yaml: its cells (a base config plus overrides), the
seeds of every cell, its layout on the results page and its claims. Every cell is one
scripts/sweep over train.seed (sweep file under OUT/sweeps/), so re-running skips finished
runs and resumes interrupted ones. The page (docs/results.md, or OUT/results.md with --quick)
is regenerated from every suite found under OUT; its plots go next to it under img/results/.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herd_runs  # noqa: E402
import reproduce_page  # noqa: E402

SUITES = ["synthetics", "mqar", "long-recall", "lm", "primer", "bert", "vit"]
SCIENCE = os.path.join(herd_runs.ROOT, "configs", "science")


def die(msg):
    print(f"reproduce: error: {msg}", file=sys.stderr)
    sys.exit(2)


def load_suite(name):
    import yaml
    path = os.path.join(SCIENCE, f"{name}.yaml")
    try:
        with open(path) as f:
            spec = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        die(f"{path}: {e}")
    for key in ("title", "layout", "metric", "wall_time", "columns", "rows"):
        if key not in spec:
            die(f"{path}: {key} is missing")
    spec["name"] = name
    spec["path"] = path
    return spec


def cells(spec):
    """[(column key, row key, x value or None)] of a suite, in page order."""
    out = []
    for col in spec["columns"]:
        xs = spec["columns"][col].get("x_values") or [None]
        for row in spec["rows"]:
            for x in xs:
                out.append((col, row, x))
    return out


def cell_name(spec, col, row, x):
    """A cell's sweep name; runs_of shares another suite's runs (primer reuses lm's)."""
    return f"{spec.get('runs_of', spec['name'])}-{col}-{row}" + ("" if x is None else f"-{x}")


def cell_overrides(spec, col, row, x, quick):
    column = spec["columns"][col]
    o = dict(column.get("set") or {})
    o.update(spec["rows"][row].get("set") or {})
    o.update((column.get("rows_set") or {}).get(row) or {})
    if x is not None:
        for key in column["x_keys"]:
            o[key] = x
        o.update((column.get("x_set") or {}).get(x) or {})
    if quick:
        o.update(spec.get("quick") or {})
    return o


def write_sweep(spec, col, row, x, seeds, quick, sweeps_dir):
    import yaml
    name = cell_name(spec, col, row, x)
    doc = {
        "base": os.path.join(SCIENCE, spec["columns"][col]["base"]),
        "name": name,
        "set": cell_overrides(spec, col, row, x, quick),
        "grid": {"train.seed": list(range(1, seeds + 1))},
    }
    path = os.path.join(sweeps_dir, f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return path


def run_suite(spec, args):
    """Runs every cell's sweep; returns the names of cells whose sweep failed."""
    sweeps_dir = os.path.join(args.out, "sweeps")
    os.makedirs(sweeps_dir, exist_ok=True)
    sweep = os.path.join(herd_runs.ROOT, "scripts", "sweep.py")
    if spec.get("prepare") and not args.report_only:
        # The suite's data (Debian packages through the project's prepare scripts).
        cmd = ["bash", os.path.join(herd_runs.ROOT, spec["prepare"])]
        if subprocess.run(cmd).returncode != 0:
            die(f"{spec['path']}: prepare {spec['prepare']} failed")
    parallel = str(spec.get("parallel", 2))
    failed = []
    start = time.time()
    done = herd_runs.statuses_by_path(args.out)
    for col, row, x in cells(spec):
        name = cell_name(spec, col, row, x)
        runs = [os.path.join(args.out, name, f"seed-{s}") for s in range(1, args.seeds + 1)]
        base = os.path.join(SCIENCE, spec["columns"][col]["base"])
        overrides = cell_overrides(spec, col, row, x, args.quick)
        same = all(herd_runs.recipe_change(r, base, dict(overrides, **{"train.seed": s})) is None
                   for s, r in enumerate(runs, 1))
        if same and all(done.get(r) == "finished" for r in runs):
            # The sweep would skip them too; not starting it saves its config checks.
            for r in runs:
                print(f"reproduce: {name}/{os.path.basename(r)}: finished -> skip")
            continue
        path = write_sweep(spec, col, row, x, args.seeds, args.quick, sweeps_dir)
        cmd = [sys.executable, sweep, path, "--out", args.out, "--parallel", parallel]
        print(f"reproduce: {os.path.basename(path)}", flush=True)
        # Ctrl-C reaches the sweep too: it stops its runs at a checkpoint and exits 130.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            rc = subprocess.run(cmd).returncode
        finally:
            signal.signal(signal.SIGINT, previous)
        if rc == 130:
            die("stopped; run the same command again to resume")
        if rc != 0:
            failed.append(name)
    record_wall(args.out, spec["name"], time.time() - start, args)
    return failed


def record_wall(out, suite, seconds, args):
    """Adds this invocation's wall time to OUT/wall.json (the page states the total)."""
    path = os.path.join(out, "wall.json")
    walls = json.load(open(path)) if os.path.exists(path) else {}
    entry = walls.get(suite, {"seconds": 0.0, "invocations": 0})
    entry["seconds"] += seconds
    entry["invocations"] += 1
    entry["seeds"] = args.seeds
    entry["quick"] = args.quick
    entry["load_avg_end"] = os.getloadavg()[0]
    walls[suite] = entry
    with open(path, "w") as f:
        json.dump(walls, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("suites", nargs="*", default=["all"],
                   help=f"{', '.join(SUITES)} or all (default)")
    p.add_argument("--quick", action="store_true",
                   help="a few steps per run: proves the plumbing; the page goes to OUT/")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per cell (default 2; at least 2 unless --quick)")
    p.add_argument("--out", default=None, help="runs go under DIR (default runs/reproduce)")
    p.add_argument("--report-only", action="store_true",
                   help="regenerate the page from the runs under DIR without training")
    args = p.parse_args()
    names = SUITES if "all" in args.suites else args.suites
    for n in names:
        if n not in SUITES:
            die(f"suite {n!r}: expected one of {', '.join(SUITES)} or all")
    if args.seeds is None:
        args.seeds = 1 if args.quick else 2
    if args.seeds < 1 or (args.seeds < 2 and not args.quick):
        die(f"--seeds {args.seeds}: expected at least 2 (1 only with --quick)")
    args.out = os.path.abspath(args.out or os.path.join(herd_runs.ROOT, "runs", "reproduce"))
    os.makedirs(args.out, exist_ok=True)
    specs = {n: load_suite(n) for n in names}
    failed = []
    if not args.report_only:
        for n in names:
            failed += run_suite(specs[n], args)
    page_dir = args.out if args.quick else os.path.join(herd_runs.ROOT, "docs")
    everything = {n: load_suite(n) for n in SUITES
                  if os.path.exists(os.path.join(SCIENCE, f"{n}.yaml"))}
    page = reproduce_page.write(everything, args.out, page_dir, cell_name, cells)
    print(f"reproduce: wrote {page}")
    if failed:
        print(f"reproduce: {len(failed)} cell(s) had failed runs: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
