"""PyTorch's figures for the GPU goals of `deno task bench:report` (issue 12), on the same GPU.

The same training step as bench/train_step.ts: torchvision ResNet-18/50 (10 classes, ImageNet
stem), batch 32, inputs sin(0.37 i), labels 7 i mod 10, class-weighted cross-entropy (weights
0.5 + c / 10), backward, AdamW (lr 1e-3), in fp32 with TF32 off (the goal's reference) and,
where CUDA is there, in fp16 autocast with a GradScaler (Lightning's "16-mixed"). Also fp32
matrix products (TF32 off) at the report's sizes, the practical fp32 peak of the adapter.

    python3 bench/torch_reference.py [--device cuda|cpu] [--quick] [--out torch.json]

Prints one line per figure and writes them as JSON (read by bench/gpu_goals.ts). `--quick`
runs the sizes `bench:report` scales down to on a CPU adapter only (a check of the scripts).
"""

import argparse
import json
import math
import os
import time

import torch
import torchvision


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, warm, reps):
    """Seconds per call of fn: the median of reps timed calls after warm untimed ones."""
    for _ in range(warm):
        fn()
    sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def matmul_gflops(n, device):
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    s = timed(lambda: a @ b, device, warm=3, reps=10)
    return 2 * n**3 / s / 1e9


def train_step(arch, size, batch, precision, device):
    """Images per second of the training step, and the first step's seconds."""
    torch.manual_seed(0)
    build = getattr(torchvision.models, arch)
    net = build(num_classes=10).to(device).train()
    n = batch * 3 * size * size
    x = torch.sin(torch.arange(n, dtype=torch.float64) * 0.37).float()
    x = x.reshape(batch, 3, size, size).to(device)
    y = torch.tensor([(i * 7) % 10 for i in range(batch)], device=device)
    w = torch.tensor([0.5 + c / 10 for c in range(10)], device=device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    mixed = precision == "16-mixed"
    scaler = None
    if mixed:
        # torch.amp.GradScaler("cuda") from PyTorch 2.3; torch.cuda.amp's before.
        amp = getattr(torch, "amp", None)
        scaler = amp.GradScaler("cuda") if hasattr(amp, "GradScaler") else torch.cuda.amp.GradScaler()

    def step():
        opt.zero_grad(set_to_none=True)
        if mixed:
            with torch.autocast(device_type="cuda", dtype=torch.float16):
                loss = torch.nn.functional.cross_entropy(net(x), y, weight=w)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss = torch.nn.functional.cross_entropy(net(x), y, weight=w)
            loss.backward()
            opt.step()

    t0 = time.perf_counter()
    step()
    sync(device)
    first = time.perf_counter() - t0
    s = timed(step, device, warm=3, reps=10)
    return batch / s, first


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="small sizes only")
    p.add_argument("--out", default="runs/bench/torch.json")
    args = p.parse_args()
    device = torch.device(args.device)
    # The goal compares against fp32 with TF32 off.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "tf32": False,
        "cudnnBenchmark": torch.backends.cudnn.benchmark,
        "matmul": [],
        "train": [],
    }
    sizes = [256, 512, 1024] if args.quick else [1024, 2048, 4096, 8192]
    for n in sizes:
        g = matmul_gflops(n, device)
        out["matmul"].append({"n": n, "gflops": g})
        print(f"matmul fp32 {n}: {g:.0f} GFLOP/s", flush=True)
    configs = [("resnet18", 32, 32)] if args.quick else [
        (arch, size, 32) for size in (32, 224) for arch in ("resnet18", "resnet50")
    ]
    precisions = ["32", "16-mixed"] if device.type == "cuda" else ["32"]
    for precision in precisions:
        for arch, size, batch in configs:
            ips, first = train_step(arch, size, batch, precision, device)
            assert math.isfinite(ips)
            out["train"].append({
                "arch": arch,
                "size": size,
                "batch": batch,
                "precision": precision,
                "imagesPerSec": ips,
                "firstStepS": first,
            })
            print(
                f"{arch} {size}px batch {batch} {precision}: {ips:.1f} img/s "
                f"(first step {first:.2f} s)",
                flush=True,
            )
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
