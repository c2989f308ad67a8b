#!/usr/bin/env python3
"""Golden values for tests/data/transforms_test.ts, from torchvision 0.14's tensor transforms.

Run: `/usr/bin/python3 tests/data/gen_transforms_golden.py` (writes transforms_golden.json beside it).
Kept beside the data tests rather than in tests/golden/ because the data area owns only tests/data.
"""
import json
import pathlib

import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

BIL = InterpolationMode.BILINEAR


def L(t):
    return t.detach().cpu().tolist()


def generate():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 7, 9, generator=g)  # C, H, W in [0, 1)
    out = {"img": L(img.permute(1, 2, 0))}  # HWC for the TS side
    out["resize_5x4"] = L(F.resize(img, [5, 4], BIL, antialias=False).permute(1, 2, 0))
    out["resize_11x13"] = L(F.resize(img, [11, 13], BIL, antialias=False).permute(1, 2, 0))
    out["resize_short_4"] = L(F.resize(img, 4, BIL, antialias=False).permute(1, 2, 0))
    out["center_crop_4"] = L(F.center_crop(img, [4, 4]).permute(1, 2, 0))
    out["center_crop_10"] = L(F.center_crop(img, [10, 10]).permute(1, 2, 0))
    out["resized_crop"] = L(F.resized_crop(img, 1, 2, 5, 6, [4, 4], BIL, antialias=False).permute(1, 2, 0))
    padded = F.pad(img, [2], fill=0)
    out["pad_crop"] = L(F.crop(padded, 1, 3, 6, 6).permute(1, 2, 0))  # box in padded coords
    out["hflip"] = L(F.hflip(img).permute(1, 2, 0))
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    out["normalize_chw"] = L(F.normalize(img, mean, std))
    return out


if __name__ == "__main__":
    here = pathlib.Path(__file__).resolve().parent
    (here / "transforms_golden.json").write_text(json.dumps(generate(), separators=(",", ":")))
    print("wrote tests/data/transforms_golden.json")
