"""Golden values for the tensor core: every differentiable op's forward and gradients.

Each case: inputs (shape, data), an upstream gradient `w` of the output's shape (so
backward(out, w) gives input grads = vector-Jacobian products), the output and the grads.
"""
import torch

from common import L, randn


def T(t):
    """Shape and flat data, 8 significant digits (enough for f32 comparisons at 1e-6)."""
    return {"shape": list(t.shape), "data": [float(f"{v:.8g}") for v in L(t.reshape(-1))]}


def case(fn, inputs, seed, **extra):
    xs = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*xs)
    w = randn(*out.shape, seed=seed) if out.dim() else randn(1, seed=seed).reshape(())
    out.backward(w)
    return {
        "inputs": [T(x.detach()) for x in xs],
        "w": T(w),
        "out": T(out.detach()),
        "grads": [T(x.grad) for x in xs],
        **extra,
    }


def generate():
    out = {}
    # binary ops with broadcasting: (a shape, b shape)
    shapes = [([2, 3, 4], [2, 3, 4]), ([2, 3, 4], [3, 1]), ([4], [2, 3, 1]), ([1, 5], [3, 1])]
    ops = {
        "add": torch.add,
        "sub": torch.sub,
        "mul": torch.mul,
        "div": torch.div,
    }
    out["binary"] = []
    s = 10
    for name, fn in ops.items():
        for sa, sb in shapes:
            a = randn(*sa, seed=s)
            b = randn(*sb, seed=s + 1)
            if name == "div":
                b = b.sign() * (b.abs() + 0.5)  # keep away from 0
            out["binary"].append(case(fn, [a, b], s + 2, op=name))
            s += 3
    # unary ops (positive inputs where the domain needs it)
    x = randn(3, 7, seed=1)
    pos = x.abs() + 0.1
    unary = [
        ("relu", torch.relu, x, {}),
        ("neg", torch.neg, x, {}),
        ("exp", torch.exp, x, {}),
        ("log", torch.log, pos, {}),
        ("sqrt", torch.sqrt, pos, {}),
        ("square", torch.square, x, {}),
        ("addScalar", lambda t: t + 1.5, x, {"c": 1.5}),
        ("mulScalar", lambda t: t * -2.5, x, {"c": -2.5}),
        ("powScalar", lambda t: t ** 2.5, pos, {"c": 2.5}),
        ("powScalar", lambda t: t ** 3, x, {"c": 3}),
    ]
    out["unary"] = [case(fn, [inp], 100 + i, op=name, **ex) for i, (name, fn, inp, ex) in enumerate(unary)]
    # reductions over an axis or everything
    x = randn(3, 5, 4, seed=2)
    red = []
    for op in ["sum", "mean", "max"]:
        for axis in [0, 1, 2, -1, None]:
            for keep in [False, True]:
                if axis is None and keep:
                    continue
                if axis is None:
                    fn = {"sum": torch.sum, "mean": torch.mean, "max": torch.max}[op]
                    f = lambda t, fn=fn: fn(t)
                elif op == "max":
                    f = lambda t, a=axis, k=keep: torch.max(t, dim=a, keepdim=k).values
                else:
                    fn = {"sum": torch.sum, "mean": torch.mean}[op]
                    f = lambda t, fn=fn, a=axis, k=keep: fn(t, dim=a, keepdim=k)
                red.append(case(f, [x], 200 + len(red), op=op, axis=axis, keepDim=keep))
    out["reduce"] = red
    # matmul: all transpose combos, odd sizes, batched and broadcast batch
    mm = []
    for (m, k, n) in [(5, 7, 3), (33, 3, 5), (1, 1, 1), (8, 12, 8)]:
        for ta in [False, True]:
            for tb in [False, True]:
                a = randn(*([k, m] if ta else [m, k]), seed=300 + len(mm))
                b = randn(*([n, k] if tb else [k, n]), seed=400 + len(mm))
                f = lambda x, y, ta=ta, tb=tb: (x.T if ta else x) @ (y.T if tb else y)
                mm.append(case(f, [a, b], 500 + len(mm), transA=ta, transB=tb))
    for (ba, bb) in [(3, 3), (3, 1), (1, 2)]:
        for ta in [False, True]:
            for tb in [False, True]:
                m, k, n = 4, 3, 5
                sa = [k, m] if ta else [m, k]
                sb = [n, k] if tb else [k, n]
                a = randn(*([ba] + sa if ba > 1 else sa), seed=600 + len(mm))
                b = randn(*([bb] + sb if bb > 1 else sb), seed=700 + len(mm))
                f = lambda x, y, ta=ta, tb=tb: (x.transpose(-1, -2) if ta else x) @ (
                    y.transpose(-1, -2) if tb else y)
                mm.append(case(f, [a, b], 800 + len(mm), transA=ta, transB=tb))
    out["matmul"] = mm
    # shape ops
    x = randn(2, 3, 4, seed=3)
    out["shape"] = [
        case(lambda t: t.reshape(4, 6), [x], 901, op="reshape", shape=[4, -1]),
        case(lambda t: t.permute(2, 0, 1), [x], 902, op="permute", perm=[2, 0, 1]),
        case(lambda t: t.transpose(-1, -2), [x], 903, op="transpose"),
        case(lambda t: t[:, 1:3, :], [x], 904, op="slice", axis=1, start=1, length=2),
        case(lambda t: t[..., 3:4], [x], 905, op="slice", axis=-1, start=3, length=1),
        case(lambda a, b: torch.cat([a, b], 1), [x, randn(2, 2, 4, seed=4)], 906, op="concat",
             axis=1),
        case(lambda a, b, c: torch.cat([a, b, c], 2),
             [x, randn(2, 3, 1, seed=5), randn(2, 3, 2, seed=6)], 907, op="concat", axis=2),
        case(lambda t: t.expand(2, 3, 4), [randn(3, 1, seed=7)], 908, op="broadcastTo",
             shape=[2, 3, 4]),
        case(lambda t: t.expand(4, 2, 5), [randn(1, 5, seed=8)], 909, op="broadcastTo",
             shape=[4, 2, 5]),
    ]
    # a composite graph: x reused, broadcasting, reductions, matmul, relu
    x = randn(4, 6, seed=9)
    wt = randn(6, 3, seed=10)
    bias = randn(3, seed=11)

    def net(x, wt, bias):
        h = torch.relu(x @ wt + bias)
        return (h * h).mean() + (x * x).sum(dim=1).max() - torch.exp(-h).sum() / 7

    out["composite"] = case(net, [x, wt, bias], 1000)
    return out
