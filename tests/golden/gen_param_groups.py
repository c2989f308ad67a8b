#!/usr/bin/env python3
"""Golden values for AdamW parameter groups and their schedule (tests/optim/param_groups_test.ts).

Run: `/usr/bin/python3 tests/golden/gen_param_groups.py` → tests/golden/param_groups.json.

- schedule: the per-group lr of AdamW([{backbone, lr}, {head, lr·10}]) under the model's
  SequentialLR(LinearLR(1e-3, 1, W), CosineAnnealingLR(T, eta_min = lr·0.05), [W]) for each epoch;
- adamw: 3 steps of two groups (lr 0.01 / 0.1, weight decay 0.1 / 0) with a frozen parameter
  (requires_grad False, so no gradient): parameters after each step and which have state.
"""
import json
import pathlib

import torch

OUT = pathlib.Path(__file__).resolve().parent / "param_groups.json"


def schedule(lr, head_factor, warmup, max_epochs):
    a = torch.nn.Parameter(torch.zeros(1))
    b = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr": lr * head_factor}], lr=lr)
    lin = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1e-3, end_factor=1.0, total_iters=max(1, warmup))
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, max_epochs - warmup), eta_min=lr * 0.05)
    seq = torch.optim.lr_scheduler.SequentialLR(opt, [lin, cos], milestones=[warmup])
    lrs = []
    for _ in range(max_epochs + 1):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        seq.step()
    return {"lr": lr, "headFactor": head_factor, "warmup": warmup, "maxEpochs": max_epochs, "lrs": lrs}


def adamw():
    g = torch.Generator().manual_seed(3)
    init = [torch.randn(3, 4, generator=g), torch.randn(5, generator=g), torch.randn(2, generator=g)]
    ps = [torch.nn.Parameter(t.clone()) for t in init]
    ps[1].requires_grad_(False)  # frozen
    opt = torch.optim.AdamW([{"params": [ps[0], ps[1]], "lr": 0.01, "weight_decay": 0.1},
                             {"params": [ps[2]], "lr": 0.1, "weight_decay": 0.0}])
    grads, traj = [], []
    for _ in range(3):
        gs = [torch.randn(p.shape, generator=g) for p in ps]
        grads.append([x.flatten().tolist() for x in gs])
        for p, x in zip(ps, gs):
            if p.requires_grad:
                p.grad = x.clone()
        opt.step()
        traj.append([p.detach().flatten().tolist() for p in ps])
    return {"init": [t.flatten().tolist() for t in init], "grads": grads, "traj": traj,
            "hasState": [p in opt.state and len(opt.state[p]) > 0 for p in ps]}


def main():
    OUT.write_text(json.dumps({
        "schedules": [schedule(1e-4, 10, 1, 5), schedule(1e-4, 10, 5, 12), schedule(3e-4, 10, 0 + 1, 1)],
        "adamw": adamw(),
    }))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
