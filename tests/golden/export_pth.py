#!/usr/bin/env python3
"""Writes the torch.save fixtures of the pretrained-weights tests (tests/fixtures/pth/).

Run with Debian's torch: `/usr/bin/python3 tests/golden/export_pth.py [--full]`.

Committed (small) fixtures, from seeded torchvision ResNet-18 at 1000 classes (two train-mode
forwards first, so running statistics are not the trivial 0/1):
  resnet18_prefix.pth         conv1, bn1, layer1 (f32, zip format) + resnet18_prefix.json:
                              input and the eval-mode layer1 output PyTorch computes
  resnet18_prefix.legacy.pth  the same tensors in the legacy format (torch < 1.6)
  resnet18_stem.f16.pth       conv1, bn1 in float16; .bf16.pth in bfloat16 (+ stem.json values)
  lightning_c10.ckpt          a Lightning-style checkpoint of ResNet-18 at 10 classes, stem and fc
                              only (`model.` prefix, class_weights, optimizer/scheduler/hparams)
  views.pth, views.legacy.pth tensors that are views of one storage (+ views.json values)
  evil.pth                    a pickle that calls os.system (must be refused)
  bad_*.pth                   hand-made files with a short storage, an absurd size, a tensor
                              past its storage's end, an unknown dtype (complex64)

With --full, writes only the large fixtures, to tests/fixtures/large/ (gitignored; CI makes them
where torch is installed): resnet18_1000.pth (47 MB), resnet50_1000.pth (103 MB) and
resnet50_1000.legacy.pth, with eval logits in *.logits.json, for the full parity test and the
bench. (Rewriting the committed ones would churn git: legacy files name storages by address.)
"""
import collections
import io
import json
import os
import pathlib
import pickle
import sys
import types
import zipfile

import torch
import torchvision

HERE = pathlib.Path(__file__).resolve().parent
FIX = HERE.parent / "fixtures" / "pth"
LARGE = HERE.parent / "fixtures" / "large"


def make(name, num_classes=1000):
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(num_classes=num_classes)
    g = torch.Generator().manual_seed(123)
    m.train()
    with torch.no_grad():
        for _ in range(2):
            m(torch.randn(2, 3, 64, 64, generator=g))
    # Non-trivial BN affine parameters, so a wrong mapping cannot go unnoticed.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5, generator=g)
                mod.bias.uniform_(-0.2, 0.2, generator=g)
    return m.eval()


def save(obj, path, legacy=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size / 1e6:.2f} MB)")


def dump(obj, path):
    path.write_text(json.dumps(obj, separators=(",", ":")))
    print(f"wrote {path.relative_to(HERE.parent.parent)}")


def randn(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def prefix_fixtures():
    m = make("resnet18")
    keep = ("conv1.", "bn1.", "layer1.")
    sd = collections.OrderedDict((k, v) for k, v in m.state_dict().items() if k.startswith(keep))
    save(sd, FIX / "resnet18_prefix.pth")
    save(sd, FIX / "resnet18_prefix.legacy.pth", legacy=True)
    x = randn((1, 3, 32, 32), 1)
    with torch.no_grad():
        y = m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x)))))
    dump({"x": x.flatten().tolist(), "xShape": list(x.shape), "layer1": y.flatten().tolist(),
          "layer1Shape": list(y.shape)}, FIX / "resnet18_prefix.json")
    stem = collections.OrderedDict((k, v) for k, v in sd.items() if k.startswith(("conv1.", "bn1.")))
    ref = {}
    for dt, tag in ((torch.float16, "f16"), (torch.bfloat16, "bf16")):
        cast = collections.OrderedDict((k, v.to(dt) if v.is_floating_point() else v) for k, v in stem.items())
        save(cast, FIX / f"resnet18_stem.{tag}.pth")
        ref[tag] = {k: v.float().flatten()[:512].tolist() for k, v in cast.items() if v.is_floating_point()}
    dump(ref, FIX / "resnet18_stem.json")


# Lightning pickles its hyper-parameters as an AttributeDict (a dict subclass); Lightning is not
# installed here, so the class is recreated under its module path for pickle to reference.
_pl = types.ModuleType("pytorch_lightning.utilities.parsing")


class AttributeDict(dict):
    pass


AttributeDict.__module__ = _pl.__name__
_pl.AttributeDict = AttributeDict
for _name in ("pytorch_lightning", "pytorch_lightning.utilities"):
    sys.modules.setdefault(_name, types.ModuleType(_name))
sys.modules[_pl.__name__] = _pl


def lightning_fixture():
    m = make("resnet18", num_classes=10)
    sd = m.state_dict()
    keep = [k for k in sd if k.startswith(("conv1.", "bn1.", "fc."))]
    state = collections.OrderedDict(("model." + k, sd[k]) for k in keep)
    state["class_weights"] = torch.ones(10)
    params = [sd[k] for k in keep if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    ckpt = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "1.9.0",
        "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val/acc_top1', 'mode': 'max'}": {
            "best_model_score": torch.tensor(0.75), "best_model_path": "/tmp/x.ckpt",
            "kth_value": torch.tensor(float("-inf"))}},
        "optimizer_states": [{
            "state": {i: {"step": torch.tensor(120.0), "exp_avg": torch.zeros_like(p),
                          "exp_avg_sq": torch.zeros_like(p)} for i, p in enumerate(params)},
            "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-4,
                              "amsgrad": False, "maximize": False, "foreach": None,
                              "capturable": False, "params": list(range(len(params)))}],
        }],
        "lr_schedulers": [{"_milestones": [5], "last_epoch": 3, "_last_lr": [6e-5]}],
        "hparams_name": "kwargs",
        "hyper_parameters": AttributeDict(num_classes=10, learning_rate=1e-4, label_smoothing=0.1),
    }
    save(ckpt, FIX / "lightning_c10.ckpt")


def view_fixtures():
    base = randn((6, 8), 7)
    views = collections.OrderedDict([
        ("base", base),
        ("t", base.t()),
        ("slice", base[1:5, 2:7:2]),
        ("row", base[3]),
        ("col", base[:, 5]),
        ("offset_contig", base[2:4]),
        ("scalar", base[4, 4]),
        ("count", torch.tensor(7, dtype=torch.int64)),
    ])
    assert all(v.storage().data_ptr() == base.storage().data_ptr() for k, v in views.items() if k != "count")
    save(views, FIX / "views.pth")
    save(views, FIX / "views.legacy.pth", legacy=True)
    dump({k: {"shape": list(v.shape), "values": v.flatten().tolist()} for k, v in views.items()},
         FIX / "views.json")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned-by-pickle",))


class FakeStorage:
    def __init__(self, numel, nbytes, dtype=torch.FloatStorage):
        self.numel, self.nbytes, self.dtype = numel, nbytes, dtype


class FakeTensor:
    """Reduces to _rebuild_tensor_v2 with any (size, stride), as a hostile writer could."""

    def __init__(self, storage, size, stride, offset=0):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def write_crafted(path, obj):
    """A zip in torch.save's layout, written with Python's zipfile (stored entries)."""
    storages = []

    class P(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, FakeStorage):
                storages.append(o)
                return ("storage", o.dtype, str(len(storages) - 1), "cpu", o.numel)
            return None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for i, s in enumerate(storages):
            z.writestr(f"archive/data/{i}", bytes(range(256)) * (s.nbytes // 256) + bytes(s.nbytes % 256))
        z.writestr("archive/version", "3\n")
    print(f"wrote {path.relative_to(HERE.parent.parent)}")


def bad_fixtures():
    save({"x": Evil()}, FIX / "evil.pth")
    # Storage declares 100 floats, its entry holds 16 bytes.
    write_crafted(FIX / "bad_short_storage.pth",
                  {"w": FakeTensor(FakeStorage(100, 16), (100,), (1,))})
    # A tensor whose extent passes the end of its (consistent) 4-element storage.
    write_crafted(FIX / "bad_extent.pth", {"w": FakeTensor(FakeStorage(4, 16), (2, 3), (3, 1))})
    # Absurd sizes: 2^40 x 2^40 elements from a 4-element storage.
    write_crafted(FIX / "bad_absurd.pth",
                  {"w": FakeTensor(FakeStorage(4, 16), (2 ** 40, 2 ** 40), (0, 0))})
    # Absurd storage: 2^50 elements declared.
    write_crafted(FIX / "bad_absurd_storage.pth",
                  {"w": FakeTensor(FakeStorage(2 ** 50, 16), (4,), (1,))})
    save({"w": torch.zeros(3, dtype=torch.complex64)}, FIX / "bad_dtype.pth")


def full_fixtures():
    x = randn((2, 3, 64, 64), 1)
    for name in ("resnet18", "resnet50"):
        m = make(name)
        save(m.state_dict(), LARGE / f"{name}_1000.pth")
        if name == "resnet50":
            save(m.state_dict(), LARGE / f"{name}_1000.legacy.pth", legacy=True)
        with torch.no_grad():
            y = m(x)
        dump({"x": x.flatten().tolist(), "xShape": list(x.shape), "logits": y.flatten().tolist(),
              "logitsShape": list(y.shape)}, LARGE / f"{name}_1000.logits.json")


def main():
    torch.set_grad_enabled(False)
    if "--full" in sys.argv:
        full_fixtures()
        return
    FIX.mkdir(parents=True, exist_ok=True)
    prefix_fixtures()
    lightning_fixture()
    view_fixtures()
    bad_fixtures()


if __name__ == "__main__":
    main()
