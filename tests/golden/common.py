"""Helpers for the golden generators: tensors to nested lists, deterministic inputs."""
import torch


def L(t):
    """A tensor as (nested) Python floats/ints."""
    return t.detach().cpu().tolist()


def randn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float32)
