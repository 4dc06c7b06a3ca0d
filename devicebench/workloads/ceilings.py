"""What a device can do at best: a large copy within it (``gbps``) and a large matmul (``tflops``).

These make efficiency = achieved / ceiling readable from one run: the seed matmul's
``tflops`` over ``matmul-fp32``'s, a bandwidth-bound step's ``gbps`` over ``copy``'s.
A copy reads and writes every byte, so it moves twice the tensor's size.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..config import CeilingSize
from ..devices import DDP_ONLY_TRAINING, BenchDevice
from ..precision import STRICT_FP32, TF32, Precision

VARIANTS = ("copy", "matmul-fp32", "matmul-tf32", "matmul-bf16")


def unsupported(device: BenchDevice, variant: str) -> str | None:
    if device.is_ddp:
        return DDP_ONLY_TRAINING
    if device.is_dp:
        return "a ceiling belongs to one device; DataParallel's replicas are measured on cuda:0"
    if not device.is_cuda and variant in ("matmul-tf32", "matmul-bf16"):
        return f"{variant.split('-')[1]} matmul is a GPU tensor-core mode; the CPU ceiling is fp32"
    return None


def precision_for(variant: str) -> Precision:
    return TF32 if variant == "matmul-tf32" else STRICT_FP32


def copy_bytes(device: BenchDevice, size: CeilingSize) -> int:
    return size.copy_bytes_cuda if device.is_cuda else size.copy_bytes_cpu


def matmul_n(device: BenchDevice, size: CeilingSize) -> int:
    return size.matmul_n_cuda if device.is_cuda else size.matmul_n_cpu


def build_copy(device: BenchDevice, nbytes: int) -> Callable[[], torch.Tensor]:
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device.torch_device)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def build_matmul(device: BenchDevice, variant: str, n: int) -> Callable[[], torch.Tensor]:
    dtype = torch.bfloat16 if variant == "matmul-bf16" else torch.float32
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device.torch_device, dtype)
    b = torch.randn(n, n, generator=gen).to(device.torch_device, dtype)
    out = torch.empty(n, n, dtype=dtype, device=device.torch_device)
    return lambda: torch.matmul(a, b, out=out)
