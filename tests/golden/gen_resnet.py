"""Golden values for src/nn: torchvision ResNet state-dict structure, layer modules with bias,
and a tiny ResNet-like net built from torchvision's own BasicBlock and Bottleneck classes
(outputs, gradients of every parameter, running statistics after train-mode steps)."""
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from common import L, randn


def structure(name):
    m = getattr(torchvision.models, name)(num_classes=10)
    sd = m.state_dict()
    return {
        "keys": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sd.items()],
        "params": [k for k, _ in m.named_parameters()],
        "numParams": sum(p.numel() for p in m.parameters()),
    }


def tiny():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        BasicBlock(4, 8, stride=2, downsample=nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))),
        Bottleneck(8, 2, stride=2, downsample=nn.Sequential(nn.Conv2d(8, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )
    # Non-trivial BN affine parameters so their gradients are exercised.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape))
    state = {k: L(v) for k, v in net.state_dict().items()}
    x = randn(2, 2, 8, 8, seed=1)
    g = randn(2, 3, seed=2)
    net.train()
    out1 = net(x)
    loss = (out1 * g).sum()
    loss.backward()
    grads = {k: L(p.grad) for k, p in net.named_parameters()}
    out2 = net(randn(2, 2, 8, 8, seed=3))  # second train step: running stats again
    after = {k: L(v) for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}
    net.eval()
    with torch.no_grad():
        out_eval = net(x)
    return {
        "state": state,
        "x": L(x),
        "g": L(g),
        "x2": L(randn(2, 2, 8, 8, seed=3)),
        "outTrain": L(out1),
        "loss": loss.item(),
        "grads": grads,
        "outTrain2": L(out2),
        "after": after,
        "outEval": L(out_eval),
    }


def layers():
    x = randn(2, 3, 5, 5, seed=4).requires_grad_()
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=True)
    y = conv(x)
    gy = randn(*y.shape, seed=5)
    (y * gy).sum().backward()
    lx = randn(3, 5, seed=6).requires_grad_()
    lin = nn.Linear(5, 4)
    ly = lin(lx)
    gl = randn(3, 4, seed=7)
    (ly * gl).sum().backward()
    return {
        "conv": {"x": L(x), "w": L(conv.weight), "b": L(conv.bias), "y": L(y), "gy": L(gy),
                 "dx": L(x.grad), "dw": L(conv.weight.grad), "db": L(conv.bias.grad)},
        "linear": {"x": L(lx), "w": L(lin.weight), "b": L(lin.bias), "y": L(ly), "gy": L(gl),
                   "dx": L(lx.grad), "dw": L(lin.weight.grad), "db": L(lin.bias.grad)},
    }


def generate():
    return {
        "structure": {n: structure(n) for n in ["resnet18", "resnet34", "resnet50"]},
        "tiny": tiny(),
        "layers": layers(),
    }
