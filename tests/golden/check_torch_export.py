#!/usr/bin/env python3
"""Loads a PyTorch safetensors export (`deno task export --format safetensors`) into torchvision
with strict=True and checks its logits against our own eval forward.

Usage:
  /usr/bin/python3 tests/golden/check_torch_export.py MODEL.safetensors CONFIG.json REFERENCE.safetensors
  /usr/bin/python3 tests/golden/check_torch_export.py --serve

MODEL.safetensors and CONFIG.json are the export; REFERENCE.safetensors holds `images`
[N, C, H, W] F32 and `logits` [N, classes] F32 from the project's own eval forward. The model is
built as the README says: torchvision.models.<architecture>(num_classes=...), with the stem swapped
for `small_input` or `in_channels` != 3. Prints one JSON line with the largest logit difference;
exits 0 when every logit agrees within 1e-4 (atol and rtol), 1 otherwise.

With --serve, torch is imported once (seconds of CPU per import) and checks are read from stdin:
one JSON line per check, [MODEL, CONFIG, REFERENCE], answered by one JSON line (the same object
plus "code", the exit status the single check would have). The first line written is
{"ready": true} once torch and torchvision are imported.

Run by tests/export/torch_test.ts wherever /usr/bin/python3 has torch and torchvision.
"""
import contextlib
import io
import json
import struct
import sys

import torch
import torchvision
from torch import nn

DTYPES = {"F32": torch.float32, "I64": torch.int64, "I32": torch.int32, "F16": torch.float16}


def load_file(path):
    """safetensors.torch.load_file where the package is installed, else a minimal reader."""
    try:
        from safetensors.torch import load_file as st_load
    except ImportError:
        st_load = None
    if st_load is not None:
        return st_load(path)
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        buf = bytearray(data[base + begin : base + end])
        t = torch.frombuffer(buf, dtype=DTYPES[e["dtype"]]) if buf else torch.empty(0, dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out


def build(cfg):
    """torchvision's model for the config, with the stem swapped as the README shows."""
    model = getattr(torchvision.models, cfg["architecture"])(num_classes=cfg["num_classes"])
    if cfg["small_input"]:
        model.conv1 = nn.Conv2d(cfg["in_channels"], 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif cfg["in_channels"] != 3:
        model.conv1 = nn.Conv2d(cfg["in_channels"], 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def main(model_path, config_path, ref_path):
    with open(config_path) as f:
        cfg = json.load(f)
    state = load_file(model_path)
    bad = [k for k, v in state.items() if k.endswith("num_batches_tracked") and v.dtype != torch.int64]
    if bad:
        print(json.dumps({"ok": False, "error": f"num_batches_tracked not int64: {bad[:3]}"}))
        return 1
    model = build(cfg)
    model.load_state_dict(state, strict=True)
    model.eval()
    ref = load_file(ref_path)
    with torch.no_grad():
        got = model(ref["images"])
    want = ref["logits"]
    diff = (got - want).abs()
    ok = bool(got.shape == want.shape and (diff <= 1e-4 + 1e-4 * want.abs()).all())
    print(json.dumps({"ok": ok, "shape": list(got.shape), "max_abs_diff": float(diff.max()), "architecture": cfg["architecture"]}))
    return 0 if ok else 1


def serve():
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            paths = json.loads(line)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(*paths)
            res = json.loads(out.getvalue())
        except Exception as e:  # one bad check must not end the others
            code, res = 2, {"ok": False, "error": f"{type(e).__name__}: {e}"}
        res["code"] = code
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        sys.exit(serve())
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
