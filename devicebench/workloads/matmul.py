"""``c = torch.matmul(a, b)`` with (10000x200) @ (200x10000), the tutorial's first benchmark.

The output is allocated by every call, as the tutorial writes it. Variants: ``fp32`` (strict
IEEE fp32, TF32 off: the like-for-like CPU comparison), ``tf32`` and ``bf16`` (GPU tensor-core
modes). On ``dp`` the multiplication runs as a module inside DataParallel, which splits the
rows of ``a`` across the visible GPUs and gathers ``c`` on the first.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..config import MatmulSize
from ..devices import DDP_ONLY_TRAINING, BenchDevice
from ..precision import STRICT_FP32, TF32, Precision

VARIANTS = ("fp32", "tf32", "bf16")


def unsupported(device: BenchDevice, variant: str) -> str | None:
    if device.is_ddp:
        return DDP_ONLY_TRAINING
    if not device.is_cuda and variant != "fp32":
        return f"{variant} matmul is a GPU tensor-core mode; the CPU benchmark is fp32"
    return None


def precision_for(variant: str) -> Precision:
    return TF32 if variant == "tf32" else STRICT_FP32


def dtype_for(variant: str) -> torch.dtype:
    return torch.bfloat16 if variant == "bf16" else torch.float32


class MatmulModule(torch.nn.Module):
    """``a @ b`` as a module, so DataParallel can scatter ``a`` and replicate ``b``."""

    def __init__(self, b: torch.Tensor):
        super().__init__()
        self.register_buffer("b", b)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, self.b)


def build(device: BenchDevice, variant: str, size: MatmulSize) -> Callable[[], torch.Tensor]:
    """The step: one matmul on ``device``, inputs made (untimed) from a fixed seed."""
    gen = torch.Generator().manual_seed(0)
    dtype = dtype_for(variant)
    a = torch.randn(size.m, size.k, generator=gen).to(device.torch_device, dtype)
    b = torch.randn(size.k, size.n, generator=gen).to(device.torch_device, dtype)
    if device.is_dp:
        module = device.wrap(MatmulModule(b))
        return lambda: module(a)
    return lambda: torch.matmul(a, b)
