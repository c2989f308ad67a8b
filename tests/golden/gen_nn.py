"""Golden values for the CNN ops (tests/autograd/nn_ops_test.ts, tests/kernels/*):
conv2d forward/dgrad/wgrad over ResNet-like and edge geometries, max pooling (ties,
overlapping windows), global average pooling, BatchNorm2d over two training steps and in eval
mode, linear with and without bias. Each gradient is of sum(out · gy) for a random gy."""
import torch
import torch.nn.functional as F

from common import L as _L, randn


def _round(v):
    if isinstance(v, list):
        return [_round(e) for e in v]
    return float(f"{v:.7g}") if isinstance(v, float) else v


def L(t):
    """Like common.L, to 7 significant digits (keeps the JSON small; f32 has ~7)."""
    return _round(_L(t))


def conv_case(name, xs, ws, stride=1, padding=0, dilation=1, seed=0):
    x = randn(*xs, seed=seed).requires_grad_(True)
    w = (randn(*ws, seed=seed + 1) * 0.5).requires_grad_(True)
    y = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    gy = randn(*y.shape, seed=seed + 2)
    (y * gy).sum().backward()
    return {
        "name": name,
        "x": L(x),
        "xShape": list(xs),
        "w": L(w),
        "wShape": list(ws),
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "y": L(y),
        "yShape": list(y.shape),
        "gy": L(gy),
        "dx": L(x.grad),
        "dw": L(w.grad),
    }


def pool_case(name, x, k, s, p):
    x = x.clone().requires_grad_(True)
    y = F.max_pool2d(x, k, s, p)
    gy = randn(*y.shape, seed=7)
    (y * gy).sum().backward()
    return {"name": name, "x": L(x), "xShape": list(x.shape), "k": k, "s": s, "p": p,
            "y": L(y), "yShape": list(y.shape), "gy": L(gy), "dx": L(x.grad)}


def bn():
    c = 3
    m = torch.nn.BatchNorm2d(c)
    with torch.no_grad():
        m.weight.copy_(1 + 0.5 * randn(c, seed=20))
        m.bias.copy_(0.5 * randn(c, seed=21))
    steps = []
    # Step 0 has 15-element planes (the kernels' unaligned path), step 1 16 (vec4 path).
    shapes = [(4, c, 3, 5), (2, c, 4, 4)]
    for i in range(2):
        x = (randn(*shapes[i], seed=30 + i) * (1 + i) + i).requires_grad_(True)
        m.train()
        y = m(x)
        gy = randn(*y.shape, seed=40 + i)
        m.zero_grad()
        (y * gy).sum().backward()
        steps.append({
            "shape": list(shapes[i]), "x": L(x), "y": L(y), "gy": L(gy), "dx": L(x.grad),
            "dweight": L(m.weight.grad), "dbias": L(m.bias.grad),
            "runningMean": L(m.running_mean), "runningVar": L(m.running_var),
            "numBatchesTracked": int(m.num_batches_tracked),
        })
    m.eval()
    x = randn(2, c, 4, 4, seed=50).requires_grad_(True)
    y = m(x)
    gy = randn(*y.shape, seed=51)
    m.zero_grad()
    (y * gy).sum().backward()
    ev = {"x": L(x), "y": L(y), "gy": L(gy), "dx": L(x.grad),
          "dweight": L(m.weight.grad), "dbias": L(m.bias.grad)}
    return {"shape": [4, c, 3, 5], "evalShape": [2, c, 4, 4], "weight": L(1 + 0.5 * randn(c, seed=20)),
            "bias": L(0.5 * randn(c, seed=21)), "steps": steps, "eval": ev}


def linear_case(bias):
    x = randn(3, 5, seed=60).requires_grad_(True)
    w = randn(4, 5, seed=61).requires_grad_(True)
    b = randn(4, seed=62).requires_grad_(True) if bias else None
    y = F.linear(x, w, b)
    gy = randn(3, 4, seed=63)
    (y * gy).sum().backward()
    out = {"x": L(x), "w": L(w), "y": L(y), "gy": L(gy), "dx": L(x.grad), "dw": L(w.grad)}
    if bias:
        out["b"] = L(b)
        out["db"] = L(b.grad)
    return out


def generate():
    convs = [
        conv_case("7x7 s2 p3 on 11x11 (floors)", (2, 3, 11, 11), (4, 3, 7, 7), 2, 3, seed=1),
        conv_case("3x3 s1 p1", (2, 5, 6, 7), (6, 5, 3, 3), 1, 1, seed=2),
        conv_case("3x3 s2 p1 on 9x9", (2, 4, 9, 9), (5, 4, 3, 3), 2, 1, seed=3),
        conv_case("3x3 dilation 2 p2", (1, 3, 8, 9), (4, 3, 3, 3), 1, 2, 2, seed=4),
        conv_case("3x3 s2 dilation 2 p2 (zero-insertion dgrad)", (1, 3, 10, 11), (4, 3, 3, 3), 2, 2, 2, seed=9),
        conv_case("3x3 s1 p1 wide rows (32-column tiles)", (1, 3, 4, 30), (5, 3, 3, 3), 1, 1, seed=10),
        conv_case("3x3 s2 p1 on 4x56 (28-column tiles)", (1, 2, 4, 56), (4, 2, 3, 3), 2, 1, seed=11),
        conv_case("3x3 s1 p1, 5 images of 8 columns (partial image blocks)", (5, 3, 3, 8), (4, 3, 3, 3), 1, 1, seed=12),
        conv_case("1x1 s1 pointwise (batched matmul path)", (1, 4, 8, 9), (6, 4, 1, 1), seed=13),
        conv_case("1x1 s2 pointwise on 16x17", (1, 3, 16, 17), (4, 3, 1, 1), 2, seed=14),
        conv_case("1x1 s2 on 7x7", (2, 6, 7, 7), (8, 6, 1, 1), 2, 0, seed=5),
        conv_case("1x1 s1", (2, 4, 5, 8), (3, 4, 1, 1), 1, 0, seed=6),
        conv_case("2x3 stride (1,2) pad (0,1)", (1, 2, 6, 13), (3, 2, 2, 3), (1, 2), (0, 1), seed=7),
        conv_case("3x3 s1 p1 36 channels (multi-tile)", (1, 3, 5, 9), (36, 3, 3, 3), 1, 1, seed=8),
        # Planes no larger than the kernel (ResNet's last stages): taps that only read padding are cropped.
        conv_case("3x3 s1 p1 on 2x2 (tiny plane)", (3, 6, 2, 2), (5, 6, 3, 3), 1, 1, seed=15),
        conv_case("3x3 s1 p1 on 1x1 (cropped to a dense layer)", (2, 7, 1, 1), (9, 7, 3, 3), 1, 1, seed=16),
        conv_case("3x3 s2 p1 on 2x2 (cropped to a dense layer)", (2, 4, 2, 2), (6, 4, 3, 3), 2, 1, seed=17),
        conv_case("3x3 s(1,2) p1 on 3x2 (cropped columns)", (2, 3, 3, 2), (4, 3, 3, 3), (1, 2), 1, seed=18),
        conv_case("3x3 dilation 2 p2 on 3x3 (tiny plane)", (2, 3, 3, 3), (4, 3, 3, 3), 1, 2, 2, seed=19),
    ]
    # Ties: values from {0, 1, 2} so most windows hold several equal maxima.
    g = torch.Generator().manual_seed(9)
    ties = torch.randint(0, 3, (2, 2, 7, 7), generator=g).float()
    pools = [
        pool_case("3/2/1 random (ResNet stem)", randn(2, 3, 9, 9, seed=8), 3, 2, 1),
        pool_case("3/2/1 ties", ties, 3, 2, 1),
        pool_case("3/1/1 ties, heavy overlap", ties, 3, 1, 1),
        pool_case("2/2/0 ties, even", ties, 2, 2, 0),
        pool_case("3/2/1 all equal", torch.ones(1, 1, 5, 6), 3, 2, 1),
    ]
    x = randn(2, 3, 5, 4, seed=70).requires_grad_(True)
    y = F.adaptive_avg_pool2d(x, 1)
    gy = randn(*y.shape, seed=71)
    (y * gy).sum().backward()
    avg = {"x": L(x), "xShape": [2, 3, 5, 4], "y": L(y), "gy": L(gy), "dx": L(x.grad)}
    return {"conv": convs, "maxPool": pools, "avgPool": avg, "batchNorm": bn(),
            "linear": {"bias": linear_case(True), "noBias": linear_case(False)}}
