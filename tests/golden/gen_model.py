"""Golden values for issue 4: cross-entropy (+ gradients), AdamW, LR schedules, accuracy.

torchmetrics is not installed here, so its MulticlassAccuracy definitions are computed by
hand: per-class top-k recall (0 for a class without targets), micro = hits / samples, and
our macro = mean of per-class recall over classes that have targets. Ties: the lower class
index wins (rank = #{c : z_c > z_y or (z_c == z_y and c < y)}; hit iff rank < k).
"""
import math
import warnings

import torch
import torch.nn.functional as F

from common import L, randn

warnings.filterwarnings("ignore")


def ce_case(name, n, c, seed, weighted, eps, reduction, ignore_rows=(), scale=1.0):
    z = (randn(n, c, seed=seed) * scale).requires_grad_(True)
    g = torch.Generator().manual_seed(seed + 100)
    y = torch.randint(0, c, (n,), generator=g)
    for r in ignore_rows:
        y[r] = -100
    w = (torch.rand(c, generator=g) * 2 + 0.25) if weighted else None
    loss = F.cross_entropy(z, y, weight=w, label_smoothing=eps, reduction=reduction)
    gout = randn(*loss.shape, seed=seed + 7) if reduction == "none" else torch.tensor(1.0)
    loss.backward(gout)
    return {
        "name": name,
        "n": n,
        "c": c,
        "logits": L(z),
        "targets": L(y),
        "weight": L(w) if w is not None else None,
        "eps": eps,
        "reduction": reduction,
        "gout": L(gout),
        "loss": L(loss),
        "grad": L(z.grad),
    }


def loss_cases():
    return [
        ce_case("plain", 6, 5, 1, False, 0.0, "mean"),
        ce_case("smooth", 6, 5, 2, False, 0.1, "mean"),
        ce_case("weighted", 6, 5, 3, True, 0.0, "mean"),
        ce_case("weighted_smooth_ignore", 7, 5, 4, True, 0.1, "mean", ignore_rows=(2,)),
        ce_case("weighted_smooth_sum", 7, 5, 5, True, 0.1, "sum", ignore_rows=(0,)),
        ce_case("weighted_smooth_none", 7, 5, 6, True, 0.1, "none", ignore_rows=(3,)),
        ce_case("large", 5, 4, 7, True, 0.1, "mean", scale=1e4),
        ce_case("many_classes", 9, 43, 8, True, 0.1, "mean", ignore_rows=(4,)),
    ]


def lr_table(max_epochs, warmup, base=1e-4, start=1e-3, eta_factor=0.05):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=base, weight_decay=1e-4)
    s1 = torch.optim.lr_scheduler.LinearLR(opt, start_factor=start, end_factor=1.0,
                                           total_iters=max(1, warmup))
    s2 = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, max_epochs - warmup),
                                                    eta_min=base * eta_factor)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [s1, s2], milestones=[warmup])
    lrs = []
    for _ in range(max_epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    lrs.append(opt.param_groups[0]["lr"])
    return {"maxEpochs": max_epochs, "warmup": warmup, "lrs": lrs}


def cosine_only(max_epochs, base=1e-4, eta_factor=0.05):
    # Our warmupEpochs: 0 (no warmup): a SequentialLR over the cosine alone.
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=base)
    s2 = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, max_epochs),
                                                    eta_min=base * eta_factor)
    lrs = []
    for _ in range(max_epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        s2.step()
    lrs.append(opt.param_groups[0]["lr"])
    return {"maxEpochs": max_epochs, "warmup": 0, "lrs": lrs}


def adamw_case():
    p1 = torch.nn.Parameter(randn(3, 4, seed=11))
    p2 = torch.nn.Parameter(randn(5, seed=12))
    init = [L(p1), L(p2)]
    opt = torch.optim.AdamW([p1, p2], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    lrs = [1e-2, 5e-3, 2e-2]
    grads = []
    traj = []
    for t, lr in enumerate(lrs):
        opt.param_groups[0]["lr"] = lr
        g1 = randn(3, 4, seed=20 + t)
        g2 = randn(5, seed=30 + t) * 0.01
        p1.grad = g1.clone()
        p2.grad = g2.clone()
        opt.step()
        grads.append([L(g1), L(g2)])
        traj.append([L(p1), L(p2)])
    st = opt.state_dict()["state"]
    return {
        "init": init,
        "lrs": lrs,
        "grads": grads,
        "traj": traj,
        "expAvg": [L(st[0]["exp_avg"]), L(st[1]["exp_avg"])],
        "expAvgSq": [L(st[0]["exp_avg_sq"]), L(st[1]["exp_avg_sq"])],
    }


def topk_stats(z, y, c, k):
    hits = [0] * c
    support = [0] * c
    for i in range(z.shape[0]):
        t = int(y[i])
        zy = z[i, t].item()
        rank = sum(1 for j in range(c) if z[i, j].item() > zy or (z[i, j].item() == zy and j < t))
        support[t] += 1
        hits[t] += 1 if rank < k else 0
    return hits, support


def metric_case(c, k, batches):
    hits = [0] * c
    support = [0] * c
    conf = [[0] * c for _ in range(c)]
    for z, y in batches:
        h, s = topk_stats(z, y, c, k)
        hits = [a + b for a, b in zip(hits, h)]
        support = [a + b for a, b in zip(support, s)]
        pred = z.argmax(dim=1)  # first maximum on CPU
        for i in range(z.shape[0]):
            conf[int(y[i])][int(pred[i])] += 1
    per = [h / s if s > 0 else 0.0 for h, s in zip(hits, support)]
    present = [p for p, s in zip(per, support) if s > 0]
    return {
        "c": c,
        "k": k,
        "batches": [{"logits": L(z), "targets": L(y)} for z, y in batches],
        "micro": sum(hits) / sum(support),
        "macro": sum(present) / len(present),
        "none": per,
        "confusion": conf,
    }


def metric_cases():
    c = 5
    # Batch 1: class 4 never appears as a target; row 0 has a top-1 tie between classes 1 and 3.
    z1 = randn(6, c, seed=40)
    z1[0] = torch.tensor([0.0, 2.0, -1.0, 2.0, 1.0])
    y1 = torch.tensor([3, 0, 1, 2, 3, 1])
    z2 = randn(4, c, seed=41)
    z2[1] = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])  # all tied: only class 0 is top-1
    y2 = torch.tensor([0, 2, 2, 1])
    batches = [(z1, y1), (z2, y2)]
    return [metric_case(c, 1, batches), metric_case(c, 3, batches)]


def tiny_model_case(c, n=8, d=4, seed=50):
    """A linear 'backbone' on flattened [N, 1, 2, 2] images under the seed's loss and AdamW."""
    x = randn(n, 1, 2, 2, seed=seed)
    w = randn(c, d, seed=seed + 1) * 0.5
    b = randn(c, seed=seed + 2) * 0.1
    g = torch.Generator().manual_seed(seed + 3)
    y = torch.randint(0, c, (n,), generator=g)
    cw = torch.rand(c, generator=g) + 0.5
    W = torch.nn.Parameter(w.clone())
    B = torch.nn.Parameter(b.clone())
    opt = torch.optim.AdamW([W, B], lr=1e-2, weight_decay=1e-4)
    logits = x.reshape(n, d) @ W.t() + B
    loss = F.cross_entropy(logits, y, weight=cw, label_smoothing=0.1)
    loss.backward()
    gw, gb = W.grad.clone(), B.grad.clone()
    opt.step()
    k = min(5, c)
    hits1, support = topk_stats(logits.detach(), y, c, 1)
    hitsk, _ = topk_stats(logits.detach(), y, c, k)
    per = [h / s if s > 0 else 0.0 for h, s in zip(hits1, support)]
    return {
        "c": c, "n": n, "d": d,
        "x": L(x), "w": L(w), "b": L(b), "y": L(y), "classWeights": L(cw),
        "loss": L(loss), "gradW": L(gw), "gradB": L(gb),
        "wAfter": L(W), "bAfter": L(B),
        "top1": sum(hits1) / n, "topk": sum(hitsk) / n, "perClass": per,
        # Unweighted, unsmoothed validation loss is not what the model logs: it logs the
        # training loss function (weights + smoothing) on validation batches too.
    }


def generate():
    return {
        "loss": loss_cases(),
        "lr": [lr_table(20, 5), lr_table(10, 5), lr_table(6, 5), lr_table(3, 5)],
        "lrNoWarmup": cosine_only(8),
        "adamw": adamw_case(),
        "metrics": metric_cases(),
        "tinyModel": [tiny_model_case(3), tiny_model_case(43, n=12)],
    }
