"""The results page of scripts/reproduce: tables, plots and one verdict sentence per claim.

Generated from the runs under OUT and the suite files configs/science/*.yaml; never edited by
hand. A cell's value is its metric at the final evaluation of each finished seed.
"""

import json
import os
import statistics

import herd_runs

# Mean gap below which two rows count as level (accuracy points; loss in nats).
MIN_GAP = 0.05
VERDICTS = ("reproduced in ordering", "not reproduced", "inconclusive at this scale")


def finals(run_dirs, metric, done):
    """Final value of metric in each finished run (done: {run dir: status}), and the runs'
    total wall seconds."""
    values, wall = [], 0.0
    for d in run_dirs:
        wall_path = os.path.join(d, "sweep_wall_s")
        if os.path.exists(wall_path):
            wall += float(open(wall_path).read())
        if done.get(os.path.abspath(d)) != "finished":
            continue
        _, evals = herd_runs.read_metrics(d)
        vals = [e[metric] for e in evals if e.get(metric) is not None]
        if vals:
            values.append(vals[-1])
    return values, wall


def seed_dirs(out, name):
    base = os.path.join(out, name)
    if not os.path.isdir(base):
        return []
    return sorted(os.path.join(base, d) for d in os.listdir(base) if d.startswith("seed-"))


def percent_scale(spec):
    """100 for an accuracy metric (shown in %), 1 otherwise."""
    return 100 if spec["metric"].endswith(("accuracy", "_acc")) else 1


def fmt(values, scale):
    if not values:
        return "—"
    m = statistics.mean(values) * scale
    if len(values) == 1:
        return f"{m:.1f} (1 seed)" if scale == 100 else f"{m:.3f} (1 seed)"
    lo, hi = min(values) * scale, max(values) * scale
    if scale == 100:
        return f"{m:.1f} ({lo:.1f}–{hi:.1f})"
    return f"{m:.3f} ({lo:.3f}–{hi:.3f})"


def verdict(claim, values, higher_better, scale, names):
    """(verdict, the sentence's numbers) of an ordering claim over rows' seed values (raw
    units: accuracy in [0, 1], where MIN_GAP is 5 points; loss in nats)."""
    sign = 1 if higher_better else -1
    better = {r: values.get(r, []) for r in claim["better"]}
    worse = {r: values.get(r, []) for r in claim["worse"]}
    numbers = "; ".join(f"{names[r]} {fmt(v, scale)}" for r, v in {**better, **worse}.items())
    if any(len(v) < 2 for v in list(better.values()) + list(worse.values())):
        return VERDICTS[2], numbers + "; fewer than 2 finished seeds in a cell"
    s_better = {r: [sign * x for x in v] for r, v in better.items()}
    s_worse = {r: [sign * x for x in v] for r, v in worse.items()}
    if claim.get("kind") == "at_least":
        # "matches": no more than MIN_GAP behind in the mean; behind by more in every seed fails.
        behind = max(statistics.mean(w) - statistics.mean(b)
                     for b in s_better.values() for w in s_worse.values())
        if behind <= MIN_GAP:
            return VERDICTS[0], numbers
        clear = all(max(b) < min(w) for b in s_better.values() for w in s_worse.values())
        return (VERDICTS[1] if clear else VERDICTS[2]), numbers
    lo_better = min(min(v) for v in s_better.values())
    gap_needed = MIN_GAP
    hi_worse = max(max(v) for v in s_worse.values())
    gap = (min(statistics.mean(v) for v in s_better.values())
           - max(statistics.mean(v) for v in s_worse.values()))
    if lo_better > hi_worse and gap >= gap_needed:
        return VERDICTS[0], numbers
    reversed_pair = any(max(b) < min(w) and statistics.mean(w) - statistics.mean(b) >= gap_needed
                        for b in s_better.values() for w in s_worse.values())
    return (VERDICTS[1] if reversed_pair else VERDICTS[2]), numbers


def plot_table(spec, values, path, scale):
    """Grouped bars: one group per column, one bar per row, whiskers over the seeds."""
    plt = pyplot()
    cols, rows = list(spec["columns"]), list(spec["rows"])
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        means, lo, hi, xs = [], [], [], []
        for j, col in enumerate(cols):
            v = [x * scale for x in values.get((col, row, None), [])]
            if not v:
                continue
            m = statistics.mean(v)
            xs.append(j + (i - (len(rows) - 1) / 2) * width)
            means.append(m)
            lo.append(m - min(v))
            hi.append(max(v) - m)
        if xs:
            ax.bar(xs, means, width, yerr=[lo, hi], capsize=2,
                   label=spec["rows"][row]["name"])
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([spec["columns"][c]["name"] for c in cols])
    ax.set_ylabel(spec["metric"] + (" (%)" if scale == 100 else ""))
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def panels(spec, path, draw, x_label, width=4):
    """One panel per column (draw(ax, column) fills it), saved small to path."""
    plt = pyplot()
    cols = list(spec["columns"])
    fig, axes = plt.subplots(1, len(cols), figsize=(width * len(cols), 3), squeeze=False)
    for ax, col in zip(axes[0], cols):
        draw(ax, col)
        ax.set_title(spec["columns"][col]["name"], fontsize=9)
        ax.set_xlabel(x_label(col))
        ax.set_ylabel(spec["metric"])
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_curves(spec, run_dirs, path):
    """The metric against steps, mean over seeds, one panel per column."""
    def draw(ax, col):
        for row in spec["rows"]:
            curves = []
            for d in run_dirs.get((col, row), []):
                _, evals = herd_runs.read_metrics(d)
                pts = [(e["step"], e[spec["metric"]]) for e in evals
                       if e.get(spec["metric"]) is not None]
                if pts:
                    curves.append(dict(pts))
            if not curves:
                continue
            steps = sorted(set.intersection(*[set(c) for c in curves]))
            ax.plot(steps, [statistics.mean(c[s] for c in curves) for s in steps], "o-",
                    markersize=2, label=spec["rows"][row]["name"])
    panels(spec, path, draw, lambda col: "step")


def plot_xy(spec, values, path, scale):
    """The metric against the columns' x values, one panel per column, a line per row."""
    def draw(ax, col):
        for row in spec["rows"]:
            xs, ms, lo, hi = [], [], [], []
            for x in spec["columns"][col]["x_values"]:
                v = [a * scale for a in values.get((col, row, x), [])]
                if v:
                    m = statistics.mean(v)
                    xs.append(x), ms.append(m), lo.append(m - min(v)), hi.append(max(v) - m)
            if xs:
                ax.errorbar(xs, ms, yerr=[lo, hi], marker="o", markersize=3, capsize=2,
                            label=spec["rows"][row]["name"])
        ax.set_xscale("log", base=2)
    panels(spec, path, draw, lambda col: spec["columns"][col].get("x_name", "x"), width=3.6)


def settings_lines(spec, quick):
    """The exact settings: each column's base config, its overrides and x values, each row's
    overrides, and --quick's when the runs were quick (scripts/reproduce combines them)."""
    lines = []
    for c in spec["columns"].values():
        text = f"- column {c['name']}: `configs/science/{c['base']}`"
        if c.get("set"):
            text += f" with `{json.dumps(c['set'])}`"
        if c.get("x_values"):
            text += f", {' and '.join(c['x_keys'])} in {c['x_values']}"
        lines.append(text)
    for r in spec["rows"].values():
        lines.append(f"- row {r['name']}: `{json.dumps(r.get('set') or {})}`")
    if quick:
        lines.append(f"- every run (--quick): `{json.dumps(spec.get('quick') or {})}`")
    return lines


def pick_lrs(spec, values):
    """{(column, row): the lr (x) whose finished seeds have the best mean final metric}."""
    sign = 1 if spec.get("higher_is_better", True) else -1
    picked = {}
    for col, c in spec["columns"].items():
        for row in spec["rows"]:
            scored = [(sign * statistics.mean(values[(col, row, x)]), x) for x in c["x_values"]
                      if values.get((col, row, x))]
            if scored:
                picked[(col, row)] = max(scored)[1]
    return picked


def mean_curve(dirs, metric, flops_per_token=1.0):
    """(tokens x flops_per_token, metric) at the eval steps every run has, means over runs."""
    curves = []
    for d in dirs:
        train, evals = herd_runs.read_metrics(d)
        tokens = {r["step"]: r.get("tokens", 0) for r in train}
        curves.append({e["step"]: (tokens.get(e["step"], 0), e[metric]) for e in evals
                       if e.get(metric) is not None})
    if not curves:
        return [], []
    steps = sorted(set.intersection(*[set(c) for c in curves]))
    xs = [statistics.mean(c[s][0] for c in curves) * flops_per_token for s in steps]
    return xs, [statistics.mean(c[s][1] for c in curves) for s in steps]


def picked_table(spec, values, picked, run_dirs):
    """Each row at its picked lr: parameters (vs the first row), FLOPs per token, final metric."""
    lines = [f"Each model at its picked lr (the best mean final {spec['metric']} of the sweep):",
             "", "| model | parameters | FLOPs/token | picked lr | final " + spec["metric"] + " |",
             "|---|---|---|---|---|"]
    first = None
    for (col, row), lr in picked.items():
        params, fpt = herd_runs.model_counts(run_dirs[(col, row, lr)][0])
        first = first or params
        lines.append(f"| {spec['rows'][row]['name']} | {params:,} ({100 * (params / first - 1):+.1f}%)"
                     f" | {fpt:.3g} | {lr:g} | {fmt(values[(col, row, lr)], 1)} |")
    return lines + [""]


def plot_budget(spec, picked, run_dirs, path):
    """The metric against tokens and against training FLOPs, each row at its picked lr."""
    plt = pyplot()
    fig, (by_tokens, by_flops) = plt.subplots(1, 2, figsize=(8, 3))
    for (col, row), lr in picked.items():
        dirs = run_dirs[(col, row, lr)]
        fpt = herd_runs.model_counts(dirs[0])[1]
        label = f"{spec['rows'][row]['name']} (lr {lr:g})"
        by_tokens.plot(*mean_curve(dirs, spec["metric"]), "-", label=label)
        by_flops.plot(*mean_curve(dirs, spec["metric"], fpt), "-", label=label)
    for ax, x in ((by_tokens, "tokens"), (by_flops, "training FLOPs")):
        ax.set_xlabel(x)
        ax.set_ylabel(spec["metric"])
    by_tokens.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def reach_line(spec, claim, picked, run_dirs):
    """Compute for claim["row"] to reach the baseline's final metric, as a fraction of the
    baseline's whole run (both at their picked lr; lower metric is better)."""
    col, row, base = claim["column"], claim["row"], claim["baseline"]
    base_dirs = run_dirs.get((col, base, picked.get((col, base))), [])
    row_dirs = run_dirs.get((col, row, picked.get((col, row))), [])
    names = spec["rows"]
    if len(base_dirs) < 2 or len(row_dirs) < 2:
        return (f"- {claim['claim']}: **{VERDICTS[2]}** (fewer than 2 finished seeds of "
                f"{names[row]['name']} or {names[base]['name']}).")
    target = statistics.mean(mean_curve([d], spec["metric"])[1][-1] for d in base_dirs)
    base_fpt = herd_runs.model_counts(base_dirs[0])[1]
    base_flops = statistics.mean(mean_curve([d], spec["metric"], base_fpt)[0][-1]
                                 for d in base_dirs)
    row_fpt = herd_runs.model_counts(row_dirs[0])[1]
    fractions = []
    for d in row_dirs:
        xs, ys = mean_curve([d], spec["metric"], row_fpt)
        reached = [x for x, y in zip(xs, ys) if y <= target]
        fractions.append(reached[0] / base_flops if reached else None)
    shown = ", ".join("never" if f is None else f"{f:.2f}" for f in fractions)
    if all(f is not None and f < 1 - MIN_GAP for f in fractions):
        verdict_text = VERDICTS[0]
    elif all(f is None for f in fractions):
        verdict_text = VERDICTS[1]
    else:
        verdict_text = VERDICTS[2]
    return (f"- {claim['claim']}: **{verdict_text}** ({names[row]['name']} reaches "
            f"{names[base]['name']}'s final {spec['metric']} {target:.3f} (mean of its seeds) at "
            f"these fractions of its training FLOPs, per seed: {shown}; evaluated every "
            f"train.eval_every steps).")


def suite_section(spec, out, page_dir, cell_name, cells, walls):
    name = spec["name"]
    higher_better = spec.get("higher_is_better", True)
    scale = percent_scale(spec)
    values, run_dirs, run_wall, seeds_seen = {}, {}, 0.0, 0
    done = herd_runs.statuses_by_path(out)
    for col, row, x in cells(spec):
        dirs = seed_dirs(out, cell_name(spec, col, row, x))
        v, w = finals(dirs, spec["metric"], done)
        values[(col, row, x)] = v
        run_dirs.setdefault((col, row), []).extend(dirs)
        run_dirs[(col, row, x)] = [d for d in dirs if done.get(os.path.abspath(d)) == "finished"]
        run_wall += w
        seeds_seen = max(seeds_seen, len(dirs))
    command = f"scripts/reproduce {name} --seeds 2"
    lines = [f"## {spec['title']}", "", f"`{command}` — stated size: {spec['wall_time']}.", ""]
    if not any(values.values()):
        return lines + ["Not run yet.", ""]
    wall = walls.get(name, {})
    quick = " (--quick: a few steps, plumbing only)" if wall.get("quick") else ""
    lines += [f"Measured{quick}: {wall.get('seconds', 0) / 60:.1f} min of wall time over "
              f"{wall.get('invocations', 0)} invocation(s), {run_wall / 60:.1f} min summed over "
              f"the runs, {seeds_seen} seed(s) per cell. The machine was shared with other "
              f"engineers compiling (load average {wall.get('load_avg_end', 0):.1f} on 2 cores "
              f"when the suite ended), so these times are longer than on an idle machine.", ""]
    lines += ["Settings:", ""] + settings_lines(spec, wall.get("quick")) + [""]
    if spec.get("notes"):
        lines += [spec["notes"].strip(), ""]
    img_dir = os.path.join(page_dir, "img", "results")
    os.makedirs(img_dir, exist_ok=True)
    unit = " (%)" if scale == 100 else ""
    paper = spec.get("paper") or {}
    picked = {}
    if spec["layout"] == "table":
        cols = list(spec["columns"])
        lines.append(f"Final {spec['metric']}{unit}, mean (min–max over seeds); the paper's "
                     "number in brackets:")
        lines.append("")
        lines.append("| model | " + " | ".join(spec["columns"][c]["name"] for c in cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for row, r in spec["rows"].items():
            cells_text = []
            for c in cols:
                p = (paper.get(c) or {}).get(row)
                cells_text.append(fmt(values[(c, row, None)], scale)
                                  + (f" [{p}]" if p is not None else ""))
            lines.append(f"| {r['name']} | " + " | ".join(cells_text) + " |")
        lines.append("")
        plot_table(spec, values, os.path.join(img_dir, f"{name}-final.png"), scale)
        plot_curves(spec, run_dirs, os.path.join(img_dir, f"{name}-curves.png"))
        lines += [f"![final {spec['metric']}](img/results/{name}-final.png)", "",
                  f"![{spec['metric']} against steps](img/results/{name}-curves.png)", ""]
    else:
        for col, c in spec["columns"].items():
            xs = c["x_values"]
            lines.append(f"{c['name']}: final {spec['metric']}{unit} against "
                         f"{c.get('x_name', 'x')}, mean (min–max over seeds):")
            lines.append("")
            lines.append("| model | " + " | ".join(str(x) for x in xs) + " |")
            lines.append("|---|" + "---|" * len(xs))
            for row, r in spec["rows"].items():
                lines.append(f"| {r['name']} | " + " | ".join(
                    fmt(values[(col, row, x)], scale) for x in xs) + " |")
            lines.append("")
        plot_xy(spec, values, os.path.join(img_dir, f"{name}-xy.png"), scale)
        lines += [f"![final {spec['metric']}](img/results/{name}-xy.png)", ""]
    if spec["layout"] == "lr_sweep":
        picked = pick_lrs(spec, values)
        lines += picked_table(spec, values, picked, run_dirs)
        plot_budget(spec, picked, run_dirs, os.path.join(img_dir, f"{name}-budget.png"))
        lines += [f"![{spec['metric']} against tokens and FLOPs](img/results/{name}-budget.png)",
                  ""]
    lines += ["Claims:", ""] + claim_lines(spec, values, picked, run_dirs) + [""]
    return lines


def claim_lines(spec, values, picked, run_dirs):
    """One verdict sentence per claim of the suite."""
    higher_better = spec.get("higher_is_better", True)
    scale = percent_scale(spec)
    unit = " (%)" if scale == 100 else ""
    lines = []
    for claim in spec.get("claims") or []:
        if claim.get("kind") == "reach":
            lines.append(reach_line(spec, claim, picked, run_dirs))
            continue
        col, x = claim["column"], claim.get("x")
        x_name = spec["columns"][col].get("x_name", "x")
        vals, names = {}, {}
        for ref in claim["better"] + claim["worse"]:
            # "row" is the row at the claim's column and x (an lr sweep: the row's picked lr);
            # "row@x" the row at another x.
            row, _, at = ref.partition("@")
            cell_x = int(at) if at else picked.get((col, row), x)
            vals[ref] = values.get((col, row, cell_x), [])
            names[ref] = spec["rows"][row]["name"] + (f" at {x_name} {at}" if at else "")
        verdict_text, numbers = verdict(claim, vals, higher_better, scale, names)
        where = spec["columns"][col]["name"] + (f" at {x_name} {x}" if x is not None else "")
        if picked:
            where += ", each row at its picked lr"
        lines.append(f"- {claim['claim']}: **{verdict_text}** ({where}, final "
                     f"{spec['metric']}{unit}, mean (min–max over seeds): {numbers}).")
    return lines


def shown_path(path):
    rel = os.path.relpath(path, herd_runs.ROOT)
    return path if rel.startswith("..") else rel


def write(specs, out, page_dir, cell_name, cells):
    walls_path = os.path.join(out, "wall.json")
    walls = json.load(open(walls_path)) if os.path.exists(walls_path) else {}
    lines = [
        "# Results: the seeds' claims, trained with herd",
        "",
        "<!-- Generated by scripts/reproduce (scripts/reproduce_page.py) from the runs under "
        f"{shown_path(out)} and configs/science/*.yaml. Never edit by hand: "
        "change those and rerun. -->",
        "",
        "**Generated by `scripts/reproduce`; never edited by hand.** Each suite below is one "
        "command; its runs are sweeps (`scripts/sweep`) over `train.seed`, so rerunning skips "
        "finished runs. Each claim gets one verdict: *reproduced in ordering* (every seed of "
        "the rows the paper puts ahead beats every seed of the rows it puts behind, and the "
        f"means differ by at least {MIN_GAP:g}: {MIN_GAP * 100:g} accuracy points, or "
        f"{MIN_GAP:g} nats of loss), *not reproduced* (a row the paper puts behind beats one "
        "it puts ahead in every seed, by that much in the mean) or *inconclusive at this "
        "scale* (anything else, or fewer than 2 finished seeds in a cell). A claim that a "
        "model *matches* another counts as reproduced when its mean is no more than "
        f"{MIN_GAP:g} behind; a claim about compute (Primer) when every seed reaches the "
        f"baseline's final loss within {1 - MIN_GAP:g} of the baseline's training FLOPs. "
        "These are CPU-sized runs: "
        "a verdict is about the ordering at this scale, not the papers' absolute numbers.",
        "",
    ]
    for spec in specs.values():
        lines += suite_section(spec, out, page_dir, cell_name, cells, walls)
    path = os.path.join(page_dir, "results.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path
