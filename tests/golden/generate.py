#!/usr/bin/env python3
"""Writes the golden values the tests compare against, computed with PyTorch.

Run with Debian's torch: `/usr/bin/python3 tests/golden/generate.py [area ...]`.
Each `gen_<area>.py` beside this file defines `generate() -> dict`; its result is written
to `<area>.json`. The JSON files are committed so CI needs no PyTorch.
"""
import importlib
import json
import pathlib
import sys

import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    torch.set_grad_enabled(True)
    areas = sys.argv[1:] or sorted(p.stem[4:] for p in HERE.glob("gen_*.py"))
    for area in areas:
        torch.manual_seed(0)
        mod = importlib.import_module(f"gen_{area}")
        data = mod.generate()
        out = HERE / f"{area}.json"
        out.write_text(json.dumps(data, separators=(",", ":")))
        print(f"wrote {out.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()
