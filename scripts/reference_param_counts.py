#!/usr/bin/env python3
"""Parameter counts the reference code creates for herd's paper configs (docs/blocks.md).

Each function counts what the reference constructor registers as nn.Parameter, read from:
  safari@02220c69 src/models/sequence/{long_conv_lm,h3,hyena}.py, ssm/ss_kernel*.py
  flash-attention flash_attn/models/gpt.py (GPTLMHeadModel), modules/{mha,mlp}.py
  m2@7d359e8c bert/src/{bert_layers,create_bert}.py, mm/{monarch_mixer_sequence_mixer,
  hyena_utils,blockdiag_linear}.py
  transformers BertForMaskedLM (bert-base-uncased config; m2's hf_bert.py baseline)
Buffers (t, deltas) are not parameters. Tied LM heads count once. No dependencies.
"""


def pad(v, m=8):  # ConvLMHeadModel / GPTLMHeadModel / create_bert pad the vocabulary
    return (v + m - 1) // m * m


def linear(i, o, bias=True):
    return i * o + (o if bias else 0)


def layernorm(d):
    return 2 * d


def mha(d):  # flash_attn MHA: Wqkv (3D, D) + bias, out_proj (D, D) + bias
    return linear(d, 3 * d) + linear(d, d)


def primer(d, width=3):  # MHA + three bias-free depthwise convs (D, 1, width)
    return mha(d) + 3 * d * width


def h3(d, n=64, head_dim=1):
    h = d // head_dim
    shift = d * n + d * n  # SSKernelShift: B (D, N), C (1, D, N)
    diag = h * (n // 2) * 2 + h + h * (n // 2) * 2 + 2 * h * (n // 2)  # C, log_dt, B, inv_A_real+A_imag
    return 4 * linear(d, d) + shift + d + diag + h  # q/k/v/output_linear, ssm_k_D, D


def implicit_filter(channels, l_max, emb, width, inner, rev=False):
    mlp = linear(emb, width) + inner * linear(width, width) + linear(width, channels, False)
    # bias (skip term), pos_emb.z (trainable), one Sin freq (1, width), MLP(s)
    return channels + l_max * emb + width + mlp * (2 if rev else 1)


def hyena(d, l_max, emb, width, inner=2, order=2):
    w = (order + 1) * d  # in_proj, out_proj, short_filter (w, 1, 3) + bias, filter_fn
    return linear(d, w) + linear(d, d) + 4 * w + implicit_filter((order - 1) * d, l_max, emb, width, inner)


def lm(vocab, d, mixers, d_inner, positions=0):
    total = pad(vocab) * d + positions * d + layernorm(d)  # wte (tied head), wpe, ln_f
    for m in mixers:
        total += m + 2 * layernorm(d) + linear(d, d_inner) + linear(d_inner, d)
    return total


def m2_bert(d, inter, layers=12, vocab=30522, l_max=128, width=128, emb=5, nblocks=4):
    mixer = linear(d, 3 * d) + linear(d, d) + 4 * 3 * d  # in/out_linear, short_filter
    mixer += 2 * implicit_filter(d, l_max, emb, width, 2, rev=True)  # filter_fn, filter_fn2
    glu = 2 * inter * d // nblocks + inter * d // nblocks + d + layernorm(d)  # BlockdiagLinear
    emb_params = pad(vocab) * d + l_max * d + 2 * d + layernorm(d)  # word, position, token type, LN
    head = linear(d, d) + layernorm(d) + pad(vocab)  # transform + decoder bias (weight tied)
    return emb_params + layers * (mixer + glu) + head


def hf_bert(d, inter, layers=12, vocab=30522, positions=512):  # BertForMaskedLM, no pooler
    layer = mha(d) + layernorm(d) + linear(d, inter) + linear(inter, d) + layernorm(d)
    emb_params = pad(vocab) * d + positions * d + 2 * d + layernorm(d)
    head = linear(d, d) + layernorm(d) + pad(vocab)
    return emb_params + layers * layer + head


V = 50257
COUNTS = {
    "gpt-125m": lm(V, 768, [mha(768)] * 12, 3072, 2048),
    "gpt-355m": lm(V, 1024, [mha(1024)] * 24, 4096, 2048),
    "h3-125m": lm(V, 768, [mha(768) if i in (1, 8) else h3(768) for i in range(12)], 3072),
    "h3-355m": lm(V, 1024, [mha(1024) if i in (1, 13) else h3(1024) for i in range(24)], 4096),
    "hyena-153m": lm(V, 864, [hyena(864, 2048, 33, 64)] * 18, 1728),
    "hyena-355m": lm(V, 1024, [hyena(1024, 2048, 17, 64, inner=4)] * 36, 2048),
    "primer-125m": lm(V, 768, [primer(768)] * 12, 3072, 2048),
    "bert-base (HF, padded vocab)": hf_bert(768, 3072),
    "m2-bert-base (768, 80M)": m2_bert(768, 3072),
    "m2-bert-960 (param-matched)": m2_bert(960, 3840),
    "m2-bert-large (1536, 260M)": m2_bert(1536, 6144),
    "m2-bert-large (1792, 341M)": m2_bert(1792, 7168),
}

if __name__ == "__main__":
    for name, n in COUNTS.items():
        print(f"{name:30s} {n:>12,d}")
