#!/usr/bin/env python3
"""Golden values for dynamic loss scaling (tests/optim/grad_scaler_test.ts).

Run: `/usr/bin/python3 tests/golden/gen_grad_scaler.py` → tests/golden/grad_scaler.json.

The real `torch.cuda.amp.GradScaler` drives an SGD step per iteration (unscale_, step, update).
Its two device kernels exist only for CUDA in torch 1.13, so on this CPU they are replaced by
Python transcriptions of aten/src/ATen/native/cuda/AmpKernels.cu (scale kept as a float32
tensor, the same arithmetic), and its per-device tensor cache loses a CUDA-only assertion;
everything else (when a step is skipped, how the scale and the
growth tracker move, the defaults) is GradScaler's own code.

- defaults: GradScaler()'s constructor defaults, read from its signature;
- runs: for each config, the found-inf pattern of every iteration, and after each the scale,
  the growth tracker and whether the optimizer stepped;
- unscale: one gradient with scale 2^16: the unscaled values and the found-inf flag.
"""
import inspect
import json
import math
import pathlib

import torch
import torch.cuda.amp.grad_scaler as gs

OUT = pathlib.Path(__file__).resolve().parent / "grad_scaler.json"


def amp_update_scale_(scale, growth_tracker, found_inf, growth_factor, backoff_factor, growth_interval):
    """AmpKernels.cu amp_update_scale_cuda_kernel, on 1-element float32/int32 tensors."""
    if found_inf.item():
        scale.mul_(backoff_factor)
        growth_tracker.fill_(0)
    else:
        successful = growth_tracker.item() + 1
        if successful == growth_interval:
            new_scale = (scale * growth_factor).to(torch.float32)
            if math.isfinite(new_scale.item()):
                scale.copy_(new_scale)
            growth_tracker.fill_(0)
        else:
            growth_tracker.fill_(successful)
    return scale


def non_finite_check_and_unscale_(grads, found_inf, inv_scale):
    """AmpKernels.cu _amp_foreach_non_finite_check_and_unscale_cuda_."""
    for g in grads:
        if not torch.isfinite(g).all():
            found_inf.fill_(1.0)
        g.mul_(inv_scale)


class CpuReplicator(gs._MultiDeviceReplicator):
    """GradScaler's per-device cache of a tensor, without its CUDA-only assertion."""

    def __init__(self, master_tensor):
        self.master = master_tensor
        self._per_device_tensors = {}


gs.amp_definitely_not_available = lambda: False
gs._MultiDeviceReplicator = CpuReplicator
torch._amp_update_scale_ = amp_update_scale_
torch._amp_foreach_non_finite_check_and_unscale_ = non_finite_check_and_unscale_


def run(opts, infs, steps):
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=1.0)
    scaler = torch.cuda.amp.GradScaler(**opts)
    scaler._lazy_init_scale_growth_tracker(torch.device("cpu"))
    out = []
    for i in range(steps):
        before = p.detach().clone()
        p.grad = torch.tensor([float("inf") if i in infs else 1.0, 0.0])
        scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
        out.append([scaler.get_scale(), scaler._get_growth_tracker(), bool((p != before).any())])
    return {"options": opts, "infs": sorted(infs), "steps": out}


def main():
    sig = inspect.signature(torch.cuda.amp.GradScaler.__init__).parameters
    defaults = {k: sig[k].default for k in ("init_scale", "growth_factor", "backoff_factor", "growth_interval")}
    runs = [
        # Defaults: back-offs early, then 2000 clean steps (growth), an inf, 2000 more.
        run({}, {0, 1, 4, 2006}, 4010),
        # Growth that would overflow float32 is refused; the tracker still resets.
        run({"init_scale": 2.0**126, "growth_interval": 2}, {7}, 10),
        # Factors whose products round in float32.
        run({"init_scale": 1000.0, "growth_factor": 3.0, "backoff_factor": 0.3, "growth_interval": 3},
            {2, 3, 9}, 14),
    ]
    g = torch.tensor([65536.0, -3.0, 1e-3, 1e30, 7e-40, -2.0**20], dtype=torch.float32)
    unscaled = g.clone()
    found = torch.zeros(1)
    non_finite_check_and_unscale_([unscaled], found, torch.tensor([2.0**-16]))
    golden = {
        "defaults": defaults,
        "runs": runs,
        "unscale": {"scale": 65536.0, "grad": g.tolist(), "unscaled": unscaled.tolist(),
                    "foundInf": found.item()},
    }
    OUT.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
