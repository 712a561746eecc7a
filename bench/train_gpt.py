#!/usr/bin/python3
"""The Python side of `bench/compare-python.sh`: the GPT of vcycle's `bench train`, written with
PyTorch (Debian's python3-torch, the same LibTorch 1.13 as the C++ build), timed the same way.

Same architecture (pre-LN blocks, fused QKV, causal attention, GELU MLP, learned positions, head
tied to the token embedding), same initialisation scheme, same step (clear the gradients, loss, backward,
global-norm clip at 1.0, AdamW), random tokens, median of the timed steps after warm-up.
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {  # the sizes of tools/cli/bench.cpp
    "default": dict(layers=4, hidden=256, heads=4, head_size=64, ffn=1024, context=128, vocab=256),
    "gpt2-small": dict(layers=12, hidden=768, heads=12, head_size=64, ffn=3072, context=1024, vocab=50257),
}


class Attention(nn.Module):
    def __init__(self, hidden, heads, head_size):
        super().__init__()
        self.heads, self.head_size = heads, head_size
        self.qkv = nn.Linear(hidden, 3 * heads * head_size)
        self.proj = nn.Linear(heads * head_size, hidden)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_size).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)).mul_(1.0 / math.sqrt(self.head_size))
        future = torch.ones(t, t, dtype=torch.bool).triu_(1)
        att.masked_fill_(future, float("-inf"))
        y = torch.softmax(att, -1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, self.heads * self.head_size))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln1 = nn.LayerNorm(c["hidden"])
        self.attn = Attention(c["hidden"], c["heads"], c["head_size"])
        self.ln2 = nn.LayerNorm(c["hidden"])
        self.fc = nn.Linear(c["hidden"], c["ffn"])
        self.mlp_proj = nn.Linear(c["ffn"], c["hidden"])

    def forward(self, x):
        h = x + self.attn(self.ln1(x))
        return h + self.mlp_proj(F.gelu(self.fc(self.ln2(h))))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.tok_emb = nn.Embedding(c["vocab"], c["hidden"])
        self.pos_emb = nn.Embedding(c["context"], c["hidden"])
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["layers"]))
        self.ln_f = nn.LayerNorm(c["hidden"])
        residual_std = 0.02 / math.sqrt(2 * c["layers"])
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() < 2:
                    p.fill_(1.0) if name.endswith("weight") else p.zero_()
                else:
                    p.normal_(0.0, residual_std if name.endswith(("attn.proj.weight", "mlp_proj.weight")) else 0.02)

    def loss(self, idx, target):
        t = idx.shape[1]
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(t))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.tok_emb.weight.t()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", choices=sorted(SIZES))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = all cores)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help="bf16: the forward pass under CPU autocast, as vcycle's precision: bf16")
    ap.add_argument("--tuned", action="store_true",
                    help="apply vcycle's allocator setting (run with OMP_WAIT_POLICY=PASSIVE too for all of it)")
    a = ap.parse_args()
    if a.tuned:
        # What vcycle's runtime_init does: keep freed activations in the heap instead of returning
        # them to the kernel after every step (glibc's mallopt: M_MMAP_THRESHOLD (-3) at INT_MAX, M_TRIM_THRESHOLD (-1) off).
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 2**31 - 1)
        libc.mallopt(-1, -1)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    else:
        import os
        torch.set_num_threads(os.cpu_count())
    c = SIZES[a.model]
    torch.manual_seed(0)
    model = GPT(c)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, c["vocab"], (a.batch, c["context"]))
    y = torch.randint(0, c["vocab"], (a.batch, c["context"]))
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)  # as vcycle's trainer (optim::clear_grads)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = model.loss(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median_high(times)
    tokens = a.batch * c["context"]
    print(f"python{' tuned' if a.tuned else ''} {a.model}: batch {a.batch}, {a.precision}, {torch.get_num_threads()} threads, median step {median:.4f} s "
          f"over {a.steps} steps: {tokens / median:.0f} tokens/s")


if __name__ == "__main__":
    main()
