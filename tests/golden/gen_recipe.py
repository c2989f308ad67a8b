"""Golden values for the whole-recipe numerics test (issue 13): 3 epochs of the training recipe.

The model is the stem + layer1 + layer2 of torchvision's resnet18(num_classes=10) with its
torch.manual_seed(0) weights (the committed F16 prefix fixture, read as f32), then a global
average pool and a fresh `Linear(128, C)` (torch.manual_seed(0), stored here). The recipe:
weighted cross-entropy with label smoothing 0.1, AdamW (lr 1e-3, weight decay 1e-4), LinearLR
warm-up for one epoch (start factor 1e-3) then cosine to 5 % over the remaining epochs, stepped
per epoch; BatchNorm in training mode; validation in eval mode after each epoch, in batches.
Batches of 4 images at 16 px are the shapes the other ResNet tests use, so on lavapipe this
test reuses their compiled kernel variants.

The data are integer-hashed images, exactly representable in f32, built by the same formula in
tests/train/recipe_numerics_test.ts, in a fixed order (no shuffle, no augmentation).

The reference run is f32 on one thread. The same recipe in f64, on two threads, and with
native instead of oneDNN convolutions is stored too: their spread around the reference is the
yardstick for "PyTorch's own numerical noise".
"""
import json
import pathlib
import struct

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from common import L

HERE = pathlib.Path(__file__).resolve().parent
PREFIX = HERE.parent / "fixtures" / "resnet18_c10_seed0_prefix.f16.safetensors"

C = 4
SIZE = 16
BATCH = 4
STEPS = 4
EPOCHS = 3
N_VAL = 16
LR = 1e-3
WEIGHT_DECAY = 1e-4
SMOOTHING = 0.1


def read_safetensors(path):
    """A minimal safetensors reader (F16/F32/I64), as float32/int64 tensors."""
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    kinds = {"F16": np.float16, "F32": np.float32, "I64": np.int64}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        a = np.frombuffer(b[8 + n + s:8 + n + e], dtype=kinds[v["dtype"]]).reshape(v["shape"])
        t = torch.from_numpy(a.copy())
        out[k] = t.float() if t.is_floating_point() else t
    return out


def mix(h):
    """32-bit integer hash (the same in the TypeScript test)."""
    h = (h * 2654435761) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 2246822519) & 0xFFFFFFFF
    h ^= h >> 13
    return h


def label(i):
    # Imbalanced classes, so the class weights matter: counts 3:2:1:1 per 7 images.
    return [0, 0, 0, 1, 1, 2, 3][i % 7]


def image(i):
    """[3, SIZE, SIZE]: hashed noise in [-1, 1) in steps of 1/128, plus a class-dependent block."""
    y = label(i)
    idx = np.arange(3 * SIZE * SIZE, dtype=np.int64)
    h = np.array([mix(int(i) * 3 * SIZE * SIZE + int(k)) for k in idx], dtype=np.int64)
    v = ((h >> 8) & 255).astype(np.float32) / 128.0 - 1.0
    ch, r, col = idx // (SIZE * SIZE), (idx // SIZE) % SIZE, idx % SIZE
    block = ((r // (SIZE // 4)) + (col // (SIZE // 4)) + ch) % C == y
    return torch.from_numpy((v + np.where(block, 0.75, 0.0)).astype(np.float32)).reshape(3, SIZE, SIZE)


def dataset(first, count):
    xs = torch.stack([image(first + i) for i in range(count)])
    ys = torch.tensor([label(first + i) for i in range(count)], dtype=torch.int64)
    return xs, ys


class Net(torch.nn.Module):
    def __init__(self, r, fc):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = r.conv1, r.bn1, r.relu, r.maxpool
        self.layer1, self.layer2, self.fc = r.layer1, r.layer2, fc

    def forward(self, x):
        y = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        y = self.layer2(self.layer1(y))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def build(prefix, fc_state):
    r = torchvision.models.resnet18(num_classes=10)
    r.load_state_dict(prefix, strict=False)
    fc = torch.nn.Linear(128, C)
    fc.load_state_dict(fc_state)
    return Net(r, fc)


def run(prefix, fc_state, data, weights, dtype=torch.float32, threads=1, mkldnn=True):
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = mkldnn
    net = build(prefix, fc_state).to(dtype)
    (xt, yt), (xv, yv) = data
    xt, xv, w = xt.to(dtype), xv.to(dtype), weights.to(dtype)
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1e-3, end_factor=1.0, total_iters=1)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS - 1, eta_min=LR * 0.05)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[1])
    losses, val, lrs = [], [], []
    for _ in range(EPOCHS):
        lrs.append(opt.param_groups[0]["lr"])
        net.train()
        for s in range(STEPS):
            b = slice(s * BATCH, (s + 1) * BATCH)
            loss = F.cross_entropy(net(xt[b]), yt[b], weight=w, label_smoothing=SMOOTHING)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        net.eval()
        with torch.no_grad():
            # Lightning's epoch value: the mean of the per-batch losses (equal batch sizes).
            per = [F.cross_entropy(net(xv[b:b + BATCH]), yv[b:b + BATCH], weight=w,
                                   label_smoothing=SMOOTHING) for b in range(0, N_VAL, BATCH)]
            val.append(torch.stack(per).mean().item())
        sched.step()
    torch.backends.mkldnn.enabled = True
    torch.set_num_threads(1)
    return {"stepLosses": losses, "valLosses": val, "lrs": lrs}


def drift(a, b):
    return max(abs(x - y) / abs(y) for x, y in zip(a["stepLosses"], b["stepLosses"]))


def generate():
    prefix = read_safetensors(PREFIX)
    torch.manual_seed(0)
    fc = torch.nn.Linear(128, C)
    fc_state = {k: v.detach().clone() for k, v in fc.state_dict().items()}
    train = dataset(0, BATCH * STEPS)
    data = (train, dataset(BATCH * STEPS, N_VAL))
    counts = torch.bincount(train[1], minlength=C).double()
    # "Balanced" weights N / (C · count_c), rounded to f32.
    weights = (counts.sum() / (C * counts)).float()
    ref = run(prefix, fc_state, data, weights)
    variants = {
        "f64": run(prefix, fc_state, data, weights, dtype=torch.float64),
        "twoThreads": run(prefix, fc_state, data, weights, threads=2),
        "nativeConv": run(prefix, fc_state, data, weights, mkldnn=False),
        "twoThreadsNativeConv": run(prefix, fc_state, data, weights, threads=2, mkldnn=False),
    }
    return {
        "classes": C, "size": SIZE, "batch": BATCH, "steps": STEPS, "epochs": EPOCHS, "nVal": N_VAL,
        "learningRate": LR, "weightDecay": WEIGHT_DECAY, "labelSmoothing": SMOOTHING,
        "classWeights": L(weights),
        "fcWeight": L(fc_state["weight"]), "fcBias": L(fc_state["bias"]),
        "trainLabels": L(train[1]),
        "reference": ref,
        "variants": variants,
        # Max relative step-loss difference of each PyTorch variant from the reference.
        "variantDrift": {k: drift(v, ref) for k, v in variants.items()},
    }
