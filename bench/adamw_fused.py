#!/usr/bin/env python3
"""PyTorch's fused AdamW step time at the parameter shapes `vcycle bench optim --json` wrote, on the
same device, for comparison with vcycle's optimizers (tools/gpu-check.sh runs both in one job).

    python3 bench/adamw_fused.py OPTIM_JSON OUT_JSON [--steps 20] [--warmup 3]

Parameters and gradients are fp32 and random (init × 0.02, gradients N(0, 1)), weight_decay 0.01,
lr 1e-4, as in src/optim/bench.cpp; each step is timed to the end of its kernels.
"""
import argparse
import json
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("optim_json")
    ap.add_argument("out_json")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    spec = json.load(open(a.optim_json))
    device = torch.device(spec["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("adamw_fused.py: no CUDA device")
    g = torch.Generator().manual_seed(1234)
    shapes = [s["shape"] for s in spec["shapes"]]
    grads = [torch.randn(*s, generator=g).to(device) for s in shapes]
    init = [torch.randn(*s, generator=g).mul_(0.02) for s in shapes]
    rows = []
    for name, kwargs in [("torch AdamW fused", {"fused": True}), ("torch AdamW foreach", {"foreach": True}),
                         ("torch AdamW for-loop", {"foreach": False})]:
        if device.type != "cuda" and "fused" in kwargs:
            continue  # fused AdamW is CUDA-only in most 2.x releases
        params = [p.to(device).clone().requires_grad_(True) for p in init]
        for p, gr in zip(params, grads):
            p.grad = gr
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, **kwargs)
        times = []
        for i in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        rows.append({"optimizer": name, "median_ms": statistics.median(times), "min_ms": min(times)})
    out = {"device": str(device), "torch": torch.__version__, "shapes_name": spec["shapes_name"],
           "parameters": sum(int(torch.tensor(s).prod()) for s in shapes), "steps": a.steps, "rows": rows}
    vc = {r["optimizer"]: r["median_ms"] for r in spec["rows"]}
    for r in rows:
        r["x_vcycle_adamw"] = r["median_ms"] / vc["adamw"] if vc.get("adamw") else None
    json.dump(out, open(a.out_json, "w"), indent=2)
    for r in rows:
        print(f'{r["optimizer"]:<22} {r["median_ms"]:9.3f} ms (min {r["min_ms"]:.3f})')


if __name__ == "__main__":
    main()
