"""scripts/sweep SWEEP.yaml [--out DIR] [--parallel N] [--dry-run]: a grid or list of herd runs.

SWEEP.yaml:
    base: configs/tiny-debug.yaml     # relative to the sweep file, else to the repo root
    name: lr-depth                    # runs go to DIR/<name>/<run-id>
    set: {train.steps: 200}           # overrides for every run
    grid:                             # cartesian product (key order kept)
      optimizer.lr: [1.0e-3, 3.0e-3]
      model.n_layer: [1, 2]
    # and/or list: [{model.mixer.type: hyena}, {model.mixer.type: attention}]

Every run's config is checked (`herd config check`) before any starts. Re-running skips
finished runs, resumes interrupted ones (--resume auto) and starts missing ones; a run made from
another recipe (the base file edited, other overrides: sweep_run.json records them) stops the
sweep before anything starts, naming the run to remove. Writes
DIR/<name>/summary.csv, summary.md and compare.png. Exits non-zero when a run failed.
"""

import argparse
import csv
import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herd_runs  # noqa: E402


def die(msg):
    print(f"sweep: error: {msg}", file=sys.stderr)
    sys.exit(2)


def yaml_text(v):
    """A value as `--set` parses it (YAML flow)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def load_sweep(path):
    import yaml
    try:
        with open(path) as f:
            spec = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        die(f"{path}: {e}")
    if not isinstance(spec, dict):
        die(f"{path}: expected a mapping with base, name, set, grid or list")
    unknown = set(spec) - {"base", "name", "set", "grid", "list"}
    if unknown:
        die(f"{path}: unknown key(s) {sorted(unknown)}; accepted: base, name, set, grid, list")
    if "base" not in spec:
        die(f"{path}: base (the config every run starts from) is missing")
    here = os.path.dirname(os.path.abspath(path))
    base = spec["base"]
    for candidate in (os.path.join(here, base), os.path.join(herd_runs.ROOT, base), base):
        if os.path.isfile(candidate):
            base = os.path.abspath(candidate)
            break
    else:
        die(f"{path}: base {spec['base']}: no such file (relative to the sweep file or repo)")
    name = str(spec.get("name") or os.path.splitext(os.path.basename(path))[0])
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        die(f"{path}: name {name!r}: use letters, digits, '.', '_' or '-'")
    common = spec.get("set") or {}
    grid = spec.get("grid") or {}
    listed = spec.get("list") or [{}]
    if not isinstance(common, dict) or not isinstance(grid, dict):
        die(f"{path}: set and grid are mappings of key.path: value(s)")
    if not isinstance(listed, list) or not all(isinstance(x, dict) for x in listed):
        die(f"{path}: list is a list of mappings of key.path: value")
    for k, vs in grid.items():
        if not isinstance(vs, list) or not vs:
            die(f"{path}: grid.{k}: expected a non-empty list of values")
    runs = []
    for combo in itertools.product(*grid.values()):
        for item in listed:
            varying = dict(zip(grid.keys(), combo))
            varying.update(item)
            runs.append(varying)
    return base, name, common, runs


def run_ids(runs):
    """Readable, stable ids from each run's varying overrides: lr-0.001_n_layer-2."""
    def make(varying, full):
        parts = []
        for k, v in varying.items():
            key = k if full else k.split(".")[-1]
            parts.append(f"{key}-{yaml_text(v)}")
        s = re.sub(r"[^A-Za-z0-9._=-]+", "-", "_".join(parts)) or "base"
        if len(s) > 80:
            s = s[:64] + "-" + hashlib.sha1(s.encode()).hexdigest()[:8]
        return s
    for full in (False, True):
        ids = [make(r, full) for r in runs]
        if len(set(ids)) == len(ids):
            return ids
    return [f"{i}-{make(r, True)}" for i, r in enumerate(runs)]


def sets_of(overrides):
    out = []
    for k, v in overrides.items():
        out += ["--set", f"{k}={yaml_text(v)}"]
    return out


class Sweep:
    def __init__(self, args):
        self.args = args
        self.base, self.name, self.common, varying = load_sweep(args.sweep)
        self.dir = os.path.join(args.out, self.name)
        self.runs = [dict(id=i, varying=v, dir=os.path.join(self.dir, i))
                     for i, v in zip(run_ids(varying), varying)]
        total = args.threads or os.cpu_count() or 1
        self.threads = max(1, total // max(1, args.parallel))
        self.children = {}
        self.lock = threading.Lock()
        self.stopping = False

    def overrides(self, run):
        o = dict(self.common)
        o.update(run["varying"])
        o.setdefault("train.threads", self.threads)
        return o

    def validate(self):
        """Checks every run's config before any starts; returns False on the first bad one."""
        ok = True
        for run in self.runs:
            cmd = [herd_runs.herd_binary(), "config", "check", self.base] + sets_of(
                self.overrides(run))
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                msg = (out.stderr.strip() or out.stdout.strip()).splitlines()
                print(f"sweep: {run['id']}: {msg[-1] if msg else 'config check failed'}",
                      file=sys.stderr)
                ok = False
        return ok

    def launch(self, run):
        os.makedirs(run["dir"], exist_ok=True)
        cmd = [herd_runs.herd_binary(), "train", self.base, "--run-dir", run["dir"],
               "--resume", "auto"] + sets_of(self.overrides(run))
        record = {"base": self.base, "base_sha1": herd_runs.base_sha1(self.base),
                  "overrides": self.overrides(run), "command": cmd}
        with open(os.path.join(run["dir"], "sweep_run.json"), "w") as f:
            json.dump(record, f, indent=1)
        start = time.time()
        with open(os.path.join(run["dir"], "train.log"), "a") as log:
            child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            with self.lock:
                self.children[run["id"]] = child
            with open(os.path.join(run["dir"], "herd.pid"), "w") as f:
                f.write(str(child.pid))
            rc = child.wait()
        with self.lock:
            del self.children[run["id"]]
        os.remove(os.path.join(run["dir"], "herd.pid"))
        wall = time.time() - start
        timing_path = os.path.join(run["dir"], "sweep_wall_s")
        before = float(open(timing_path).read()) if os.path.exists(timing_path) else 0.0
        with open(timing_path, "w") as f:
            f.write(f"{before + wall:.3f}")
        # The exit status `herd runs list` reports: failed unless it finished or was stopped.
        with open(os.path.join(run["dir"], "exit_status"), "w") as f:
            f.write(str(rc))
        return rc

    def stop(self, signum, frame):
        self.stopping = True
        with self.lock:
            for child in self.children.values():
                child.send_signal(signal.SIGINT)

    def main(self):
        if not self.validate():
            die("a run's config is invalid; nothing was started")
        status = herd_runs.statuses(self.dir)
        changed = [(run, herd_runs.recipe_change(run["dir"], self.base, self.overrides(run)))
                   for run in self.runs if status.get(run["id"])]
        for run, change in changed:
            if change:
                print(f"sweep: error: {run['id']}: made from another recipe ({change}); remove "
                      f"{run['dir']} to run it again", file=sys.stderr)
        if any(change for _, change in changed):
            return 2
        todo = []
        for run in self.runs:
            s = status.get(run["id"], {}).get("status", "missing")
            action = {"finished": "skip", "running": "skip (running)"}.get(
                s, "resume" if s in ("interrupted", "failed") else "start")
            print(f"sweep: {run['id']}: {s} -> {action}")
            if not action.startswith("skip"):
                todo.append(run)
        if self.args.dry_run:
            for run in todo:
                print("  herd train", self.base, "--run-dir", run["dir"], "--resume auto",
                      " ".join(sets_of(self.overrides(run))))
            return 0
        os.makedirs(self.dir, exist_ok=True)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)
        failed = []
        queue = list(todo)

        def worker():
            while True:
                with self.lock:
                    if not queue or self.stopping:
                        return
                    run = queue.pop(0)
                rc = self.launch(run)
                print(f"sweep: {run['id']}: exit {rc}")
                if rc != 0 and not self.stopping:
                    failed.append(run["id"])

        workers = [threading.Thread(target=worker) for _ in range(max(1, self.args.parallel))]
        for w in workers:
            w.start()
        for w in workers:
            while w.is_alive():
                w.join(0.2)
        self.summarize()
        if self.stopping:
            print("sweep: stopped; run it again to resume", file=sys.stderr)
            return 130
        if failed:
            print(f"sweep: {len(failed)} run(s) failed: {', '.join(failed)} (see RUN/train.log)",
                  file=sys.stderr)
            return 1
        return 0

    def summarize(self):
        status = herd_runs.statuses(self.dir)
        keys = list(dict.fromkeys(k for r in self.runs for k in r["varying"]))
        rows = []
        for run in self.runs:
            train, evals = herd_runs.read_metrics(run["dir"])
            metric, best_of = herd_runs.eval_metric(evals)
            vals = [e[metric] for e in evals if e.get(metric) is not None] if metric else []
            last = train[-1] if train else {}
            rate = last.get("tokens_per_s", last.get("images_per_s"))
            wall_path = os.path.join(run["dir"], "sweep_wall_s")
            row = {k: yaml_text(run["varying"][k]) if k in run["varying"] else "" for k in keys}
            row.update({
                "run": run["id"],
                "status": status.get(run["id"], {}).get("status", "missing"),
                "steps": last.get("step", 0),
                "metric": metric or "",
                "final": f"{vals[-1]:.4f}" if vals else "",
                "best": f"{best_of(vals):.4f}" if vals else "",
                "units_per_s": f"{rate:.0f}" if rate else "",
                "wall_s": f"{float(open(wall_path).read()):.1f}" if os.path.exists(wall_path)
                else "",
            })
            rows.append(row)
        cols = ["run"] + keys + ["status", "steps", "metric", "final", "best", "units_per_s",
                                 "wall_s"]
        with open(os.path.join(self.dir, "summary.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
        with open(os.path.join(self.dir, "summary.md"), "w") as f:
            f.write(f"# sweep {self.name}\n\nbase: {self.base}\n\n")
            f.write("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
            for r in rows:
                f.write("| " + " | ".join(str(r[c]) for c in cols) + " |\n")
        try:
            import plot
            plot.compare([r["dir"] for r in self.runs if os.path.isdir(r["dir"])],
                         os.path.join(self.dir, "compare.png"), title=f"sweep {self.name}")
        except (Exception, SystemExit) as e:  # the summary stands without its plot
            print(f"sweep: no comparison plot: {e}", file=sys.stderr)
        print(f"sweep: wrote {os.path.join(self.dir, 'summary.md')}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", help="SWEEP.yaml")
    p.add_argument("--out", default="runs/sweeps", help="runs go to OUT/<name>/<run-id>")
    p.add_argument("--parallel", type=int, default=1, help="runs at a time")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads shared by the parallel runs (default: all cores)")
    p.add_argument("--dry-run", action="store_true", help="validate and list what would run")
    args = p.parse_args()
    if args.parallel < 1:
        die("--parallel: expected a positive number")
    sys.exit(Sweep(args).main())


if __name__ == "__main__":
    main()
