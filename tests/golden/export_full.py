#!/usr/bin/env python3
"""Writes every large (gitignored) fixture of tests/fixtures/large/ in one process: those of
`export_resnet.py --full` (whole ResNet-18/50 at 10 classes, for tests/nn/parity_test.ts) and of
`export_pth.py --full` (torch.save files at 1000 classes, for tests/models/pretrained_test.ts).

Run by .ci/run with Debian's torch: `/usr/bin/python3 tests/golden/export_full.py`. Unlike
`export_resnet.py --full` it leaves the committed prefix fixtures alone (they are in git
already), and it imports torch once instead of twice (seconds of CPU each). Exits with 3, saying
so, where torch or torchvision is missing (the full-size tests are then ignored).
"""
import sys

try:
    import torch
    import torchvision  # noqa: F401 (the exporters need it; checked here for the exit code)
except ImportError as e:
    print(f"export_full: no torch/torchvision ({e}): large fixtures not written", file=sys.stderr)
    sys.exit(3)

import export_pth  # noqa: E402
import export_resnet  # noqa: E402


def main():
    torch.set_grad_enabled(False)
    export_resnet.full_fixtures()
    export_pth.full_fixtures()


if __name__ == "__main__":
    main()
