"""What a device can do at best: a large copy within it (``gb_per_s``, read + write) and a large matmul (``tflops``).

These make efficiency = achieved / ceiling readable from one run: the seed matmul's
``tflops`` over ``matmul-fp32``'s, a bandwidth-bound step's ``gb_per_s`` over ``copy``'s.
A copy reads and writes every byte, so it moves twice the tensor's size. No change to the
suite's code can slow them: ``compare`` reads them as the machine's speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from devicebench.measure.config import MiB
from devicebench.measure.precision import STRICT_FP32, TF32

from . import Step, Variant, Workload


@dataclass(frozen=True)
class CeilingSize:
    """Sizes differ between the host and an accelerator: a CPU at GPU sizes would take minutes,
    and a GPU at CPU sizes would be launch-bound instead of bandwidth- or compute-bound."""

    copy_bytes_host: int
    copy_bytes_accelerator: int
    matmul_n_host: int
    matmul_n_accelerator: int


def build(device, variant: Variant, size: CeilingSize, context=None) -> Step:
    on_accelerator = device.is_accelerator
    if variant.name == "copy":
        nbytes = size.copy_bytes_accelerator if on_accelerator else size.copy_bytes_host
        src = torch.ones(nbytes // 4, dtype=torch.float32, device=device.torch_device)
        dst = torch.empty_like(src)
        return Step(call=lambda: dst.copy_(src), work=2 * nbytes / 1e9, unit="gb_per_s", info={"nbytes": nbytes, "bytes_moved": 2 * nbytes, "bytes_counted": "read + write"})
    n = size.matmul_n_accelerator if on_accelerator else size.matmul_n_host
    dtype = torch.bfloat16 if variant.name == "matmul-bf16" else torch.float32
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device.torch_device, dtype)
    b = torch.randn(n, n, generator=gen).to(device.torch_device, dtype)
    out = torch.empty(n, n, dtype=dtype, device=device.torch_device)
    flops = 2 * n**3
    return Step(call=lambda: torch.matmul(a, b, out=out), work=flops / 1e12, unit="tflops", info={"m": n, "k": n, "n": n, "flops": flops})


WORKLOAD = Workload(
    name="ceiling",
    variants=(
        Variant("copy"),
        Variant("matmul-fp32"),
        Variant("matmul-tf32", TF32, needs=frozenset({"tf32"})),
        Variant("matmul-bf16", STRICT_FP32, needs=frozenset({"bf16"})),
    ),
    sizes={
        # 1 GiB on a GPU is far past every cache; 256 MiB is past any CPU's last-level cache.
        # An 8192 matmul keeps an H100's tensor cores busy; 2048 does the same for CPU cores.
        "seed": CeilingSize(copy_bytes_host=256 * MiB, copy_bytes_accelerator=1024 * MiB, matmul_n_host=2048, matmul_n_accelerator=8192),
        "smoke": CeilingSize(copy_bytes_host=4 * MiB, copy_bytes_accelerator=16 * MiB, matmul_n_host=256, matmul_n_accelerator=1024),
    },
    unit="tflops",
    build=lambda *args: build(*args),
    no_dp="a ceiling belongs to one device; DataParallel's replicas are measured on cuda:0",
    size_keys=(),
)
