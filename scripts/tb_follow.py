"""scripts/tb_follow RUN... [--follow] [--peak-tflops P]: RUN/tb/ TensorBoard event files.

Feeds metrics.jsonl to torch.utils.tensorboard's SummaryWriter: train/loss, train/lr,
train/grad_norm, train/tokens_per_s (or images_per_s), train/mfu and eval/<metric>. MFU is
throughput x training FLOPs per token (from `herd config check RUN/config.yaml`) over the
peak: pass --peak-tflops (e.g. the GEMM peak `herd bench train` prints) or set
HERD_PEAK_TFLOPS; without it MFU is left out. Each call rewrites RUN/tb/ from the whole file;
--follow keeps adding records until the run stops running. Then: tensorboard --logdir RUN/tb
"""

import argparse
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herd_runs  # noqa: E402


class Follower:
    def __init__(self, run_dir, peak_flops):
        from torch.utils.tensorboard import SummaryWriter
        self.run_dir = run_dir
        tb = os.path.join(run_dir, "tb")
        for old in glob.glob(os.path.join(tb, "events.out.tfevents.*")):
            os.remove(old)
        self.writer = SummaryWriter(tb)
        self.offset = 0
        self.flops = herd_runs.flops_per_token(run_dir) if peak_flops else None
        self.peak = peak_flops
        self.records = 0

    def poll(self):
        path = os.path.join(self.run_dir, "metrics.jsonl")
        if not os.path.exists(path):
            return 0
        n = 0
        with open(path) as f:
            f.seek(self.offset)
            while True:
                line = f.readline()
                if not line.endswith("\n"):
                    break  # a line still being written: read it next time
                self.offset = f.tell()
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                self.write(rec)
                n += 1
        self.writer.flush()
        self.records += n
        return n

    def write(self, rec):
        step = rec["step"]
        add = self.writer.add_scalar
        if "loss" in rec:
            for key in ("loss", "lr", "grad_norm", "tokens_per_s", "images_per_s"):
                if rec.get(key) is not None:
                    add(f"train/{key}", rec[key], step)
            for key, v in rec.items():  # the task's own train metrics (e.g. mlm_acc)
                if key not in ("step", "loss", "lr", "grad_norm", "tokens_per_s", "images_per_s",
                               "tokens", "images") and isinstance(v, (int, float)):
                    add(f"train/{key}", v, step)
            rate = rec.get("tokens_per_s") or rec.get("images_per_s")
            if self.flops and self.peak and rate:
                add("train/mfu", rate * self.flops / self.peak, step)
        else:
            for key, v in rec.items():
                if key.startswith("val_") and v is not None:
                    add(f"eval/{key[4:]}", v, step)

    def close(self):
        self.writer.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--follow", action="store_true", help="keep going while the run is running")
    p.add_argument("--peak-tflops", type=float,
                   default=float(os.environ.get("HERD_PEAK_TFLOPS", "0") or 0),
                   help="device peak for MFU (TFLOP/s)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    args = p.parse_args()
    peak = args.peak_tflops * 1e12
    if not peak:
        print("tb_follow: no --peak-tflops (or HERD_PEAK_TFLOPS): train/mfu is left out")
    followers = [Follower(r, peak) for r in args.runs]
    try:
        while True:
            for f in followers:
                f.poll()
            if not args.follow:
                break
            running = [f for f in followers if herd_runs.status(f.run_dir) == "running"]
            if not running:
                for f in followers:
                    f.poll()
                break
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    for f in followers:
        f.close()
        print(f"tb_follow: {f.records} records -> {os.path.join(f.run_dir, 'tb')}")


if __name__ == "__main__":
    main()
