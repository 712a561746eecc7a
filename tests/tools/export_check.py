"""Checks vcycle's exports from Python, independently of vcycle's code.

Loads a `vcycle export` in each format (pt with torch.load, safetensors with the small reader
below, hf as a GPT-2 directory), runs a forward pass written here on the loaded tensors, and
compares the logits with the ones vcycle computed (`vcycle eval --logits-out`). Exit 1 on a
mismatch. The GPT-2 forward follows GPT-2's published architecture (Radford et al. 2019, and
Hugging Face's GPT2LMHeadModel): Conv1D layers compute x @ W + b with W stored (in, out).

usage: export_check.py LOGITS.safetensors HEADS [--pt F] [--safetensors F] [--hf DIR]
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

TOLERANCE = 1e-5  # float32 forward passes in two implementations differ by rounding only (~1e-7)


def read_safetensors(path):
    """The safetensors format: u64 header length, JSON header, raw little-endian data."""
    dtypes = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
              "U8": np.uint8}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        raw = data[8 + n + begin:8 + n + end]
        out[name] = torch.from_numpy(np.frombuffer(raw, dtype=dtypes[e["dtype"]]).reshape(e["shape"]).copy())
    return out


def attention(q, k, v):
    """Causal softmax(q kᵀ / sqrt(h)) v over (B, H, T, h)."""
    t = q.shape[-2]
    s = q @ k.transpose(-2, -1) / (q.shape[-1] ** 0.5)
    s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, -1) @ v


def split_heads(x, heads):
    b, t, c = x.shape
    return x.view(b, t, heads, c // heads).transpose(1, 2)


def vcycle_forward(sd, idx, heads):
    """vcycle's GPT by its own tensor names (torch.nn.Linear layout: weight is (out, in))."""
    d = sd["tok_emb.weight"].shape[1]
    x = sd["tok_emb.weight"][idx] + sd["pos_emb.weight"][: idx.shape[1]]
    layers = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for l in range(layers):
        p = lambda n: sd[f"blocks.{l}.{n}"]
        h = F.layer_norm(x, (d,), p("ln1.weight"), p("ln1.bias"), 1e-5)
        q, k, v = F.linear(h, p("attn.qkv.weight"), p("attn.qkv.bias")).chunk(3, -1)
        y = attention(split_heads(q, heads), split_heads(k, heads), split_heads(v, heads))
        y = y.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        x = x + F.linear(y, p("attn.proj.weight"), p("attn.proj.bias"))
        h = F.layer_norm(x, (d,), p("ln2.weight"), p("ln2.bias"), 1e-5)
        x = x + F.linear(F.gelu(F.linear(h, p("mlp.fc.weight"), p("mlp.fc.bias"))), p("mlp.proj.weight"), p("mlp.proj.bias"))
    x = F.layer_norm(x, (d,), sd["ln_f.weight"], sd["ln_f.bias"], 1e-5)
    return x @ sd.get("head.weight", sd["tok_emb.weight"]).t()


def gpt2_forward(sd, cfg, idx):
    """GPT-2 (GPT2LMHeadModel) from its config.json and Hugging Face tensor names."""
    assert cfg["model_type"] == "gpt2" and cfg["activation_function"] == "gelu"
    eps, heads = cfg["layer_norm_epsilon"], cfg["n_head"]
    wte, wpe = sd["transformer.wte.weight"], sd["transformer.wpe.weight"]
    conv1d = lambda x, name: x @ sd[name + ".weight"] + sd[name + ".bias"]  # Conv1D: W is (in, out)
    ln = lambda x, name: F.layer_norm(x, (cfg["n_embd"],), sd[name + ".weight"], sd[name + ".bias"], eps)
    x = wte[idx] + wpe[: idx.shape[1]]
    for l in range(cfg["n_layer"]):
        h = f"transformer.h.{l}"
        q, k, v = conv1d(ln(x, h + ".ln_1"), h + ".attn.c_attn").split(cfg["n_embd"], dim=2)
        a = attention(split_heads(q, heads), split_heads(k, heads), split_heads(v, heads))
        x = x + conv1d(a.transpose(1, 2).reshape(x.shape), h + ".attn.c_proj")
        x = x + conv1d(F.gelu(conv1d(ln(x, h + ".ln_2"), h + ".mlp.c_fc")), h + ".mlp.c_proj")
    x = ln(x, "transformer.ln_f")
    head = wte if cfg.get("tie_word_embeddings", True) else sd["lm_head.weight"]
    return x @ head.t()


def check(what, logits, want):
    diff = (logits - want).abs().max().item()
    print(f"{what}: logits {tuple(logits.shape)}, max |diff| vs vcycle {diff:.3g}")
    if not diff <= TOLERANCE:
        print(f"{what}: MISMATCH (tolerance {TOLERANCE})")
        return False
    return True


def main(argv):
    ref = read_safetensors(argv[1])
    idx, want = ref["input"], ref["logits"]
    heads = int(argv[2])
    ok, i = True, 3
    while i < len(argv):
        kind, path = argv[i], argv[i + 1]
        i += 2
        with torch.no_grad():
            if kind == "--pt":
                sd = torch.load(path)
                assert isinstance(sd, dict) and all(isinstance(t, torch.Tensor) for t in sd.values()), type(sd)
                ok &= check("pt", vcycle_forward(sd, idx, heads), want)
            elif kind == "--safetensors":
                ok &= check("safetensors", vcycle_forward(read_safetensors(path), idx, heads), want)
            elif kind == "--hf":
                with open(path + "/config.json") as f:
                    cfg = json.load(f)
                ok &= check("hf", gpt2_forward(read_safetensors(path + "/model.safetensors"), cfg, idx), want)
            else:
                raise SystemExit(f"unknown option {kind}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
