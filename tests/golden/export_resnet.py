#!/usr/bin/env python3
"""Exports torchvision ResNets (torch.manual_seed(0) init) to safetensors for the parity tests.

Run with Debian's torch: `/usr/bin/python3 tests/golden/export_resnet.py [--full]`.

Always writes the small committed fixtures (tests/fixtures/):
  resnet18_c10_seed0_prefix.f16.safetensors  conv1, bn1, layer1, layer2 of resnet18(num_classes=10)
  resnet50_c10_seed0_prefix.f16.safetensors  conv1, bn1, layer1, layer2 of resnet50(num_classes=10)
  *.ref.safetensors                          inputs, torchvision outputs (eval and train mode),
                                             running statistics after the train-mode forward
The weights are stored as F16 (to keep the repo small) and the reference outputs are computed
with exactly those F16-rounded weights, so the comparison is exact up to f32 arithmetic.

With --full, also writes the whole networks in F32 to tests/fixtures/large/ (gitignored: 45 MB
and 94 MB), with logits as references; the full parity test runs only when they exist.
tests/golden/export_full.py writes only these, with export_pth.py's large fixtures (CI).

Before export, each model runs two train-mode forwards on random batches (no weight change) so
the running statistics are not the trivial 0/1 and eval mode is a real test.
"""
import json
import pathlib
import struct
import sys

import numpy as np
import torch
import torchvision

HERE = pathlib.Path(__file__).resolve().parent
FIX = HERE.parent / "fixtures"
PREFIX = ("conv1.", "bn1.", "layer1.", "layer2.")

DT = {torch.float32: ("F32", np.float32), torch.float16: ("F16", np.float16), torch.int64: ("I64", np.int64)}


def save_safetensors(path, tensors, metadata=None):
    """A minimal safetensors writer (the `safetensors` package is not installed here)."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs = []
    off = 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        dtype, npt = DT[t.dtype]
        b = t.numpy().astype(npt).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size / 1e6:.1f} MB)")


def make(name):
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(num_classes=10)
    g = torch.Generator().manual_seed(123)
    m.train()
    with torch.no_grad():
        for _ in range(2):
            m(torch.randn(4, 3, 64, 64, generator=g))
    return m


def stem_to_layer2(m, x):
    y = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    return m.layer2(m.layer1(y))


def randn(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def inputs(eval_shape, train_shape):
    """The fixed inputs; one tensor serves both modes when the shapes agree."""
    x_eval = randn(eval_shape, 1)
    return x_eval, (x_eval if train_shape == eval_shape else randn(train_shape, 2))


def store_inputs(x_eval, x_train):
    return {"x_eval": x_eval} if x_train is x_eval else {"x_eval": x_eval, "x_train": x_train}


def run_both(m, fn, x_eval, x_train, watch):
    """Eval output, then train-mode output and the watched buffers after that update."""
    ref = {}
    with torch.no_grad():
        m.eval()
        ref["out_eval"] = fn(m, x_eval)
        m.train()
        ref["out_train"] = fn(m, x_train)
    sd = m.state_dict()
    for k in watch:
        ref["after_train." + k] = sd[k]
    return ref


def prefix(name, x_eval_shape, x_train_shape, watch):
    m = make(name)
    sd = {k: v for k, v in m.state_dict().items() if k.startswith(PREFIX)}
    # Round floats to f16 and compute the references with the rounded weights.
    rounded = {k: (v.half().float() if v.is_floating_point() else v) for k, v in sd.items()}
    m.load_state_dict(rounded, strict=False)
    stored = {k: (v.half() if v.is_floating_point() else v) for k, v in rounded.items()}
    save_safetensors(FIX / f"{name}_c10_seed0_prefix.f16.safetensors", stored, {"format": "pt"})
    x_eval, x_train = inputs(x_eval_shape, x_train_shape)
    ref = run_both(m, stem_to_layer2, x_eval, x_train, watch)
    ref.update(store_inputs(x_eval, x_train))
    save_safetensors(FIX / f"{name}_c10_seed0_prefix.ref.safetensors", ref)


def full(name, x_eval_shape, x_train_shape, watch):
    m = make(name)
    save_safetensors(FIX / "large" / f"{name}_c10_seed0.safetensors", m.state_dict(), {"format": "pt"})
    x_eval, x_train = inputs(x_eval_shape, x_train_shape)
    ref = run_both(m, lambda mm, x: mm(x), x_eval, x_train, watch)
    ref.update(store_inputs(x_eval, x_train))
    save_safetensors(FIX / "large" / f"{name}_c10_seed0.ref.safetensors", ref)


W18 = ["bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
       "layer2.0.downsample.1.running_var", "layer2.1.bn2.running_mean"]
W50 = ["bn1.running_var", "layer2.0.bn2.running_mean", "layer2.0.downsample.1.running_var",
       "layer2.3.bn3.num_batches_tracked"]


def full_fixtures():
    """The whole networks (tests/fixtures/large/, gitignored); also run by export_full.py."""
    full("resnet18", (2, 3, 64, 64), (2, 3, 64, 64), W18 + ["layer4.1.bn2.running_var"])
    # Train mode at 2x3x32x32 leaves layer4 at 1x1, so its BN normalises 2 values per channel:
    # ill-conditioned (torch f32 and f64 differ by 1.05 in the logits). At 64x64 they agree to 2e-4.
    full("resnet50", (1, 3, 32, 32), (2, 3, 64, 64), W50 + ["layer4.2.bn3.running_mean"])


def main():
    torch.set_grad_enabled(False)
    prefix("resnet18", (2, 3, 64, 64), (2, 3, 64, 64), W18)
    prefix("resnet50", (1, 3, 32, 32), (2, 3, 32, 32), W50)
    if "--full" in sys.argv:
        full_fixtures()


if __name__ == "__main__":
    main()
