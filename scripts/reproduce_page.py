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
    units; scale and names only format the numbers)."""
    sign = 1 if higher_better else -1
    better = {r: values.get(r, []) for r in claim["better"]}
    worse = {r: values.get(r, []) for r in claim["worse"]}
    numbers = "; ".join(f"{names[r]} {fmt(v, scale)}" for r, v in {**better, **worse}.items())
    if any(len(v) < 2 for v in list(better.values()) + list(worse.values())):
        return VERDICTS[2], numbers + "; fewer than 2 finished seeds in a cell"
    s_better = {r: [sign * x for x in v] for r, v in better.items()}
    s_worse = {r: [sign * x for x in v] for r, v in worse.items()}
    lo_better = min(min(v) for v in s_better.values())
    hi_worse = max(max(v) for v in s_worse.values())
    gap = (min(statistics.mean(v) for v in s_better.values())
           - max(statistics.mean(v) for v in s_worse.values()))
    if lo_better > hi_worse and gap >= MIN_GAP:
        return VERDICTS[0], numbers
    reversed_pair = any(max(b) < min(w) and statistics.mean(w) - statistics.mean(b) >= MIN_GAP
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


def settings_lines(spec, out, cell_name, cells):
    """The exact settings: each column's base config and each cell's overrides (sweep files)."""
    lines = []
    for col, c in spec["columns"].items():
        lines.append(f"- {c['name']}: `configs/science/{c['base']}`")
    col, row, x = cells(spec)[0]
    sweep = os.path.join(out, "sweeps", cell_name(spec["name"], col, row, x) + ".yaml")
    if os.path.exists(sweep):
        import yaml
        common = yaml.safe_load(open(sweep)).get("set") or {}
        for key in (spec["rows"][row].get("set") or {}):
            common.pop(key, None)
        lines.append(f"- overrides of every cell (as the sweep files under "
                     f"{os.path.basename(out)}/sweeps/ record them; a column's x and a row's "
                     f"mixer come on top): `{json.dumps(common)}`")
    for row, r in spec["rows"].items():
        lines.append(f"- row {r['name']}: `{json.dumps(r.get('set') or {})}`")
    return lines


def suite_section(spec, out, page_dir, cell_name, cells, walls):
    name = spec["name"]
    higher_better = spec.get("higher_is_better", True)
    scale = 100 if spec["metric"].endswith("accuracy") else 1
    values, run_dirs, run_wall, seeds_seen = {}, {}, 0.0, 0
    done = herd_runs.statuses_by_path(out)
    for col, row, x in cells(spec):
        dirs = seed_dirs(out, cell_name(name, col, row, x))
        v, w = finals(dirs, spec["metric"], done)
        values[(col, row, x)] = v
        run_dirs.setdefault((col, row), []).extend(dirs)
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
    lines += ["Settings:", ""] + settings_lines(spec, out, cell_name, cells) + [""]
    if spec.get("notes"):
        lines += [spec["notes"].strip(), ""]
    img_dir = os.path.join(page_dir, "img", "results")
    os.makedirs(img_dir, exist_ok=True)
    unit = " (%)" if scale == 100 else ""
    paper = spec.get("paper") or {}
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
    lines += ["Claims:", ""]
    for claim in spec.get("claims") or []:
        col, x = claim["column"], claim.get("x")
        vals = {r: values.get((col, r, x), []) for r in claim["better"] + claim["worse"]}
        names = {r: spec["rows"][r]["name"] for r in vals}
        verdict_text, numbers = verdict(claim, vals, higher_better, scale, names)
        where = spec["columns"][col]["name"] + (f" at {x}" if x is not None else "")
        lines.append(f"- {claim['claim']}: **{verdict_text}** ({where}, final "
                     f"{spec['metric']}{unit}, mean (min–max over seeds): {numbers}).")
    lines.append("")
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
        "the rows the paper puts ahead beats every seed of the rows it puts behind, by at least "
        f"{MIN_GAP:g} in the mean: {MIN_GAP * 100:g} accuracy points), *not reproduced* (a row "
        "the paper puts behind beats one it puts ahead in every seed) or *inconclusive at this "
        "scale* (anything else, or fewer than 2 finished seeds). These are CPU-sized runs: "
        "a verdict is about the ordering at this scale, not the papers' absolute numbers.",
        "",
    ]
    for spec in specs.values():
        lines += suite_section(spec, out, page_dir, cell_name, cells, walls)
    path = os.path.join(page_dir, "results.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path
