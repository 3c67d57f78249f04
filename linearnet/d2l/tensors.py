"""The tensor aliases both editions' code reaches through ``d2l.`` (``d2l.reshape(x, shape)`` and friends)
and d2l 1.0's device helpers."""

from __future__ import annotations

import torch
from torch import nn

nn_Module = nn.Module

# Plain torch functions under the book's names.
ones, zeros, ones_like, zeros_like, eye = torch.ones, torch.zeros, torch.ones_like, torch.zeros_like, torch.eye
tensor, arange, linspace, meshgrid = torch.tensor, torch.arange, torch.linspace, torch.meshgrid
sin, sinh, cos, cosh, tanh, sigmoid = torch.sin, torch.sinh, torch.cos, torch.cosh, torch.tanh, torch.sigmoid
exp, log, abs, matmul, batch_matmul = torch.exp, torch.log, torch.abs, torch.matmul, torch.bmm  # noqa: A001
normal, rand, randn, concat, stack = torch.normal, torch.rand, torch.randn, torch.cat, torch.stack
float32, int32, int64 = torch.float32, torch.int32, torch.int64


# Method calls under function names (``d2l.reduce_sum(x, 1)`` is ``x.sum(1)``).
def numpy(x, *args, **kwargs):
    return x.detach().cpu().numpy(*args, **kwargs)


def size(x, *args, **kwargs):
    return x.numel(*args, **kwargs)


def reshape(x, *args, **kwargs):
    return x.reshape(*args, **kwargs)


def to(x, *args, **kwargs):
    return x.to(*args, **kwargs)


def reduce_sum(x, *args, **kwargs):
    return x.sum(*args, **kwargs)


def reduce_mean(x, *args, **kwargs):
    return x.mean(*args, **kwargs)


def argmax(x, *args, **kwargs):
    return x.argmax(*args, **kwargs)


def astype(x, *args, **kwargs):
    return x.type(*args, **kwargs)


def transpose(x, *args, **kwargs):
    return x.t(*args, **kwargs)


def expand_dims(x, *args, **kwargs):
    return x.unsqueeze(*args, **kwargs)


def swapaxes(x, *args, **kwargs):
    return x.swapaxes(*args, **kwargs)


def repeat(x, *args, **kwargs):
    return x.repeat(*args, **kwargs)


# ----- devices (d2l 1.0) ----------------------------------------------------------------------------------
def cpu() -> torch.device:
    return torch.device("cpu")


def gpu(i: int = 0) -> torch.device:
    return torch.device(f"cuda:{i}")


def num_gpus() -> int:
    return torch.cuda.device_count()


def try_gpu(i: int = 0) -> torch.device:
    """GPU ``i`` if it exists, else the CPU."""
    return gpu(i) if num_gpus() >= i + 1 else cpu()


def try_all_gpus() -> list[torch.device]:
    """Every GPU (an empty list without any)."""
    return [gpu(i) for i in range(num_gpus())]


__all__ = [name for name in dir() if not name.startswith("_") and name not in ("annotations", "torch", "nn")]
