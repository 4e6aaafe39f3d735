"""PyTorch-eager twins of what `herd bench` times, for side-by-side runs on the same wheel.

Written for this project from the papers' reference code (safari's HyenaOperator and
fftconv_ref, m2's MonarchMixerSequenceMixing and HyenaFilter, the GPT-2 recipe): the same
operations in the same order, plain torch, no fused kernels. Each twin is built from the
same YAML config herd reads, so shapes and options cannot drift apart.

    python scripts/bench/twins.py gpt-step configs/quickstart.yaml --vocab 2048 --steps 20
    python scripts/bench/twins.py mixer hyena --length 8192 --d-model 768
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- Hyena / M2 building blocks, as the reference code computes them -----------------------


def fftconv_ref(u, k, D):
    """safari/m2 fftconv_ref without gelu or dropout: FFT size 2L, kernel spectrum / n."""
    seqlen = u.shape[-1]
    n = 2 * seqlen
    k_f = torch.fft.rfft(k, n=n) / n
    u_f = torch.fft.rfft(u.to(dtype=k.dtype), n=n)
    y = torch.fft.irfft(u_f * k_f, n=n, norm="forward")[..., :seqlen]
    return (y + u * D.unsqueeze(-1)).to(dtype=u.dtype)


class Sin(nn.Module):
    def __init__(self, dim, w, w_mod=1.0):
        super().__init__()
        self.freq = nn.Parameter(w * torch.ones(1, dim))
        self.w_mod = w_mod

    def forward(self, x):
        return torch.sin(self.w_mod * self.freq * x)


class ImplicitFilter(nn.Module):
    """HyenaFilter: positional features -> Linear/Sin MLP -> exponential modulation."""

    def __init__(self, channels, l_max, order, emb_dim, w, w_mod=1.0, num_inner_mlps=2,
                 bidirectional=False):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(channels))
        t = torch.linspace(0, 1, l_max)[None, :, None]
        bands = (emb_dim - 1) // 2
        w_pos = 2 * math.pi * torch.linspace(0, l_max - 1, l_max)[None, :, None] / l_max
        f = torch.linspace(1e-4, bands - 1, bands)[None, None]
        z = torch.exp(-1j * f * w_pos)
        self.z = nn.Parameter(torch.cat([t, z.real, z.imag], dim=-1))
        self.register_buffer("t", t)
        act = Sin(order, w, w_mod)

        def mlp():
            layers = [nn.Linear(emb_dim, order), act]
            for _ in range(num_inner_mlps):
                layers += [nn.Linear(order, order), act]
            return nn.Sequential(*layers, nn.Linear(order, channels, bias=False))

        self.implicit_filter = mlp()
        self.implicit_filter_rev = mlp() if bidirectional else None
        max_decay, min_decay = math.log(1e-2) / 0.3, math.log(1e-2) / 1.5
        self.register_buffer("deltas", torch.linspace(min_decay, max_decay, channels)[None, None])

    def _gen(self, mlp, L):
        h = mlp(self.z[:, :L])
        return h * torch.exp(-self.t[:, :L] * self.deltas.abs())

    def filter(self, L):
        return self._gen(self.implicit_filter, L)

    def filter_rev(self, L):
        return self._gen(self.implicit_filter_rev, L)


class HyenaTwin(nn.Module):
    """safari HyenaOperator, num_heads = inner_factor = num_blocks = 1."""

    def __init__(self, d_model, l_max, order=2, filter_order=64, emb_dim=3, w=1.0,
                 short_filter_order=3, num_inner_mlps=2, **_):
        super().__init__()
        self.d, self.order = d_model, order
        self.in_proj = nn.Linear(d_model, (order + 1) * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        width = (order + 1) * d_model
        self.short_filter = nn.Conv1d(width, width, short_filter_order, groups=width,
                                      padding=short_filter_order - 1)
        self.filter_fn = ImplicitFilter((order - 1) * d_model, l_max, filter_order, emb_dim, w,
                                        num_inner_mlps=num_inner_mlps)

    def forward(self, u):
        L = u.size(-2)
        z = self.in_proj(u).transpose(1, 2)
        uc = self.short_filter(z)[..., :L]
        *x, v = uc.split(self.d, dim=1)
        k = self.filter_fn.filter(L)[0].transpose(0, 1)  # (d (o), L) -> per step below
        k = k.reshape(self.d, self.order - 1, L).permute(1, 0, 2)
        bias = self.filter_fn.bias.reshape(self.d, self.order - 1).t()
        for o, x_i in enumerate(reversed(x[1:])):
            v = fftconv_ref(v * x_i, k[o], bias[o])
        return self.out_proj((v * x[0]).transpose(1, 2))


class M2Twin(nn.Module):
    """m2 MonarchMixerSequenceMixing (hyena_training_additions off)."""

    def __init__(self, d_model, l_max, bidirectional=True, filter_order=16, emb_dim=3, w=10.0,
                 w_mod=1.0, residual_long_conv=False, num_inner_mlps=2, **_):
        super().__init__()
        self.d, self.bidirectional = d_model, bidirectional
        mk = lambda: ImplicitFilter(d_model, l_max, filter_order, emb_dim, w, w_mod,
                                    num_inner_mlps, bidirectional)
        self.filter_fn = mk()
        self.filter_fn2 = mk() if residual_long_conv else None
        self.in_linear = nn.Linear(d_model, 3 * d_model)
        self.out_linear = nn.Linear(d_model, d_model)
        self.short_filter = nn.Conv1d(3 * d_model, 3 * d_model, 3, groups=3 * d_model, padding=2)

    def _conv(self, f, x, L):
        k = f.filter(L)[0].t()
        if self.bidirectional:
            k_rev = f.filter_rev(L)[0].t()
            k = F.pad(k, (0, L)) + F.pad(k_rev.flip(-1), (L, 0))
        return fftconv_ref(x, k, f.bias)

    def forward(self, u):
        L = u.size(-2)
        uc = self.short_filter(self.in_linear(u).transpose(1, 2))[..., :L]
        x1, x2, v = uc.split(self.d, dim=1)
        y = self._conv(self.filter_fn, v * x1, L) * x2
        if self.filter_fn2 is not None:
            y = y + self._conv(self.filter_fn2, u.transpose(-1, -2), L)
        return self.out_linear(y.transpose(-1, -2))


# --- GPT, as herd's GPT stack builds it -----------------------------------------------------


class Attention(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)

    def forward(self, x):
        B, L, D = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, -1)
        heads = lambda t: t.view(B, L, self.n_head, D // self.n_head).transpose(1, 2)
        o = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
        return self.out_proj(o.transpose(1, 2).reshape(B, L, D))


class Block(nn.Module):
    def __init__(self, d, n_head, hidden, act, eps):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.mixer = Attention(d, n_head)
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)
        self.act = act

    def forward(self, x):
        x = x + self.mixer(self.ln_1(x))
        return x + self.fc2(self.act(self.fc1(self.ln_2(x))))


class GptTwin(nn.Module):
    def __init__(self, m, vocab):
        super().__init__()
        d = m["d_model"]
        act = {"gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
               "squared_relu": lambda t: F.relu(t).square()}[m.get("mlp", "gelu")]
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(m["max_seq_len"], d) if m.get("positional", "learned") == "learned" else None
        eps = float(m.get("norm_eps", 1e-5))
        self.h = nn.ModuleList(Block(d, m.get("n_head", 4), m.get("mlp_ratio", 4) * d, act, eps)
                               for _ in range(m["n_layer"]))
        self.ln_f = nn.LayerNorm(d, eps=eps)

    def forward(self, tokens, targets):
        T = tokens.size(1)
        x = self.wte(tokens)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1))


# --- runners --------------------------------------------------------------------------------

MIXER_CONFIGS = {"hyena": "hyena-153m.yaml", "m2": "m2-bert-base-80m.yaml"}


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def median_ms(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def run_mixer(a):
    cfg = load_yaml(os.path.join(ROOT, "configs", MIXER_CONFIGS[a.mixer]))
    opt = {k: v for k, v in cfg["model"]["mixer"].items() if k != "type"}
    torch.manual_seed(0)
    if a.mixer == "hyena":
        m = HyenaTwin(a.d_model, a.length, **opt)
    else:
        m = M2Twin(a.d_model, a.length, bidirectional=cfg["model"]["stack"] != "gpt", **opt)
    x = torch.randn(a.batch, a.length, a.d_model, requires_grad=True)
    g = torch.randn_like(x)

    def fwd():
        with torch.no_grad():
            m(x)

    def fwd_bwd():
        m.zero_grad(set_to_none=True)
        x.grad = None
        m(x).backward(g)

    return {"twin": a.mixer, "L": a.length, "d_model": a.d_model, "batch": a.batch,
            "fwd_ms": median_ms(fwd, a.warmup, a.iters),
            "fwd_bwd_ms": median_ms(fwd_bwd, a.warmup, a.iters)}


def run_gpt_step(a):
    cfg = load_yaml(a.config)
    m_cfg, t_cfg, o_cfg = cfg["model"], cfg.setdefault("train", {}), cfg.get("optimizer", {})
    d_cfg = cfg.setdefault("data", {})
    for kv in a.set or []:
        key, val = kv.split("=", 1)
        sec, name = key.split(".", 1)
        {"model": m_cfg, "train": t_cfg, "optimizer": o_cfg, "data": d_cfg}[sec][name] = yaml.safe_load(val)
    torch.manual_seed(0)
    model = GptTwin(m_cfg, a.vocab)
    # herd's groups: weight decay on matrices except the embeddings.
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith(("wte", "wpe"))]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.startswith(("wte", "wpe")))]
    betas = o_cfg.get("betas", [0.9, 0.95])
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o_cfg.get("weight_decay", 0.1)},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=o_cfg.get("lr", 3e-4), betas=tuple(betas), eps=o_cfg.get("eps", 1e-8))
    B = t_cfg.get("batch_size", 8)
    T = d_cfg.get("seq_len") or m_cfg["max_seq_len"]
    clip = t_cfg.get("grad_clip", 1.0)
    gen = torch.Generator().manual_seed(1)

    def step():
        tok = torch.randint(0, a.vocab, (B, T + 1), generator=gen)  # timing only: random ids
        opt.zero_grad(set_to_none=True)
        loss = model(tok[:, :-1], tok[:, 1:])
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss.item()

    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"twin": "gpt-step", "config": a.config, "tokens_per_step": B * T,
            "step_ms": med * 1e3, "tokens_per_s": B * T / med}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", help="also write the result to this file")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gpt-step", help="one GPT training step of a herd config")
    g.add_argument("config")
    g.add_argument("--vocab", type=int, required=True, help="vocabulary size (herd takes it from the data)")
    g.add_argument("--set", action="append", help="section.key=value, as herd's --set")
    g.add_argument("--steps", type=int, default=10)
    g.add_argument("--warmup", type=int, default=2)
    m = sub.add_parser("mixer", help="one Hyena or M2 mixer layer, forward and forward+backward")
    m.add_argument("mixer", choices=sorted(MIXER_CONFIGS))
    m.add_argument("--length", type=int, default=8192)
    m.add_argument("--d-model", type=int, default=768)
    m.add_argument("--batch", type=int, default=1)
    m.add_argument("--warmup", type=int, default=1)
    m.add_argument("--iters", type=int, default=3)
    a = p.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    out = run_gpt_step(a) if a.cmd == "gpt-step" else run_mixer(a)
    out["threads"] = torch.get_num_threads()
    out["torch"] = torch.__version__
    print(json.dumps(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
