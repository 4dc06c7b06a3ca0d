"""``c = torch.matmul(a, b)`` with (10000x200) @ (200x10000), the tutorial's first benchmark.

The output is allocated by every call, as the tutorial writes it. Variants: ``fp32`` (strict
IEEE fp32, TF32 off: the like-for-like CPU comparison), ``tf32`` and ``bf16`` (tensor-core
modes, where the device has them). On ``dp`` the multiplication runs as a module inside
DataParallel, which splits the rows of ``a`` across the visible GPUs and gathers ``c`` on the
first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from devicebench.measure.precision import STRICT_FP32, TF32

from . import Step, Variant, Workload


@dataclass(frozen=True)
class MatmulSize:
    """``c = torch.matmul(a, b)`` with a (m x k) and b (k x n), as the tutorial writes it."""

    m: int
    k: int
    n: int

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def dtype_for(variant: Variant) -> torch.dtype:
    return torch.bfloat16 if variant.name == "bf16" else torch.float32


class MatmulModule(torch.nn.Module):
    """``a @ b`` as a module, so DataParallel can scatter ``a`` and replicate ``b``."""

    def __init__(self, b: torch.Tensor):
        super().__init__()
        self.register_buffer("b", b)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, self.b)


def build(device, variant: Variant, size: MatmulSize, context=None) -> Step:
    """The step: one matmul on ``device``, inputs made (untimed) from a fixed seed."""
    gen = torch.Generator().manual_seed(0)
    dtype = dtype_for(variant)
    a = torch.randn(size.m, size.k, generator=gen).to(device.torch_device, dtype)
    b = torch.randn(size.k, size.n, generator=gen).to(device.torch_device, dtype)
    info = {"dtype": str(dtype), "flops": size.flops}
    if device.is_dp:
        module = device.wrap(MatmulModule(b))
        return Step(call=lambda: module(a), work=size.flops / 1e12, info=info)
    return Step(call=lambda: torch.matmul(a, b), work=size.flops / 1e12, info=info)


WORKLOAD = Workload(
    name="matmul",
    variants=(
        Variant("fp32", STRICT_FP32, ceiling="matmul-fp32"),
        Variant("tf32", TF32, needs=frozenset({"tf32"}), cpu_reference="fp32", ceiling="matmul-tf32"),
        Variant("bf16", STRICT_FP32, needs=frozenset({"bf16"}), cpu_reference="fp32", ceiling="matmul-bf16"),
    ),
    sizes={"seed": MatmulSize(m=10_000, k=200, n=10_000), "smoke": MatmulSize(m=256, k=64, n=256)},
    unit="tflops",
    build=lambda *args: build(*args),  # looked up when called, so a test plugin may replace build
    size_keys=("m", "k", "n"),
)
