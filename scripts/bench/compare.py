"""herd against its PyTorch-eager twins (scripts/bench/twins.py), in one sitting.

Runs, one after the other on the same machine with the same torch wheel and thread count:
  1. a GPT training step: `herd bench train CONFIG` vs twins.py gpt-step (tokens/s),
  2. one Hyena and one M2 mixer layer: `herd bench blocks` vs twins.py mixer (fwd+bwd ms),
and prints each ratio (> 1: herd is faster), with the machine's sgemm peak from herd's run.

    python scripts/bench/compare.py --threads 2 --gpt configs/quickstart.yaml \
        --data runs/data/fortunes --length 8192 --json runs/bench/compare.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TWINS = os.path.join(ROOT, "scripts", "bench", "twins.py")


def run(cmd, env):
    print("$", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"compare: command failed ({r.returncode}): {' '.join(cmd)}")
    return r.stdout


def read_json(path):
    with open(path) as f:
        return json.load(f)


def fmt_rounds(rounds):
    return ", ".join(f"{r['speedup']:.2f}" for r in rounds)


def alternate(n, env, herd_cmd, herd_json, twin_cmd, speedup):
    """n rounds of herd then its twin; each round's figures and herd's speedup over the twin."""
    rounds = []
    for _ in range(n):
        print(run(herd_cmd, env))
        herd = read_json(herd_json)[0]
        twin = json.loads(run(twin_cmd, env).strip().splitlines()[-1])
        rounds.append({"herd": herd, "twin": twin, "speedup": speedup(herd, twin)})
    return rounds


def median_round(rounds):
    """The round whose herd/twin ratio is the median (the lower middle one for an even count)."""
    ordered = sorted(rounds, key=lambda r: r["speedup"])
    return ordered[(len(ordered) - 1) // 2]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--herd", default=os.path.join(ROOT, "build", "herd"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gpt", default=os.path.join(ROOT, "configs", "quickstart.yaml"))
    p.add_argument("--data", default=os.path.join(ROOT, "runs", "data", "fortunes"),
                   help="prepared dataset for the GPT step (its vocabulary sizes the twin)")
    p.add_argument("--set", action="append", default=[], help="extra key=value for the GPT config")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--mixers", default="hyena,m2")
    p.add_argument("--length", type=int, default=8192)
    p.add_argument("--d-model", type=int, default=768)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--skip-gpt", action="store_true")
    p.add_argument("--rounds", type=int, default=1,
                   help="run each herd/twin pair this many times, alternating, and report the "
                        "median ratio (steadier on a shared machine)")
    p.add_argument("--json", help="write every figure and ratio to this file")
    a = p.parse_args()

    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    py = sys.executable
    tmp = tempfile.mkdtemp(prefix="herd-compare-")
    out = {"threads": a.threads, "gpt": None, "mixers": []}

    if not a.skip_gpt:
        manifest = yaml.safe_load(open(os.path.join(a.data, "manifest.yaml")))
        vocab = manifest["vocab_size"]
        for kv in a.set:  # herd's model.vocab_size (>= the data's) sizes the twin too
            if kv.startswith("model.vocab_size="):
                vocab = int(kv.split("=", 1)[1])
        sets = [f"data.dir={a.data}", f"train.threads={a.threads}"] + a.set
        hj = os.path.join(tmp, "train.json")
        cmd = [a.herd, "bench", "train", a.gpt, "--steps", str(a.steps), "--json", hj]
        for s in sets:
            cmd += ["--set", s]
        twin_sets = [s for s in a.set if s.split("=", 1)[0].split(".")[0] in ("model", "train", "optimizer", "data")
                     and not s.startswith("data.dir=")]
        tcmd = [py, TWINS, "--threads", str(a.threads), "gpt-step", a.gpt, "--vocab", str(vocab),
                "--steps", str(a.steps)]
        for s in twin_sets:
            tcmd += ["--set", s]
        rounds = alternate(a.rounds, env, cmd, hj, tcmd,
                           lambda h, t: h["units_per_s"] / t["tokens_per_s"])
        pick = median_round(rounds)
        herd, twin, ratio = pick["herd"], pick["twin"], pick["speedup"]
        out["gpt"] = dict(pick, config=a.gpt, rounds=[r["speedup"] for r in rounds])
        print(f"GPT step ({os.path.basename(a.gpt)}): herd {herd['units_per_s']:.0f} tok/s, "
              f"PyTorch eager {twin['tokens_per_s']:.0f} tok/s -> {ratio:.2f}x "
              f"(rounds: {fmt_rounds(rounds)}); "
              f"herd MFU {100 * herd['mfu']:.1f}% of the {herd['peak_flops'] / 1e9:.0f} GFLOP/s "
              f"sgemm peak\n")

    for mixer in [m for m in a.mixers.split(",") if m]:
        bj = os.path.join(tmp, f"{mixer}.json")
        hcmd = [a.herd, "bench", "blocks", "--mixers", mixer, "--lengths", str(a.length),
                "--d-model", str(a.d_model), "--iters", str(a.iters), "--json", bj]
        tcmd = [py, TWINS, "--threads", str(a.threads), "mixer", mixer, "--length", str(a.length),
                "--d-model", str(a.d_model), "--iters", str(a.iters)]
        rounds = alternate(a.rounds, env, hcmd, bj, tcmd,
                           lambda h, t: t["fwd_bwd_ms"] / h["fwd_bwd_ms"])
        pick = median_round(rounds)
        herd, twin, ratio = pick["herd"], pick["twin"], pick["speedup"]
        out["mixers"].append(dict(pick, mixer=mixer, rounds=[r["speedup"] for r in rounds]))
        print(f"{mixer} mixer L={a.length} d={a.d_model}: herd fwd+bwd {herd['fwd_bwd_ms']:.0f} ms, "
              f"PyTorch eager {twin['fwd_bwd_ms']:.0f} ms -> {ratio:.2f}x "
              f"(fwd {twin['fwd_ms'] / herd['fwd_ms']:.2f}x; rounds: "
              f"{fmt_rounds(rounds)})\n")

    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
