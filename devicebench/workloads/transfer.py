"""Moving a tensor between host and GPU, as the tutorial's ``.to("cuda:0")`` and ``.cpu()`` do.

Pageable host memory is staged through a driver buffer; pinned (page-locked) memory is read
by the GPU's copy engine directly, which is what ``DataLoader(pin_memory=True)`` buys.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..devices import DDP_ONLY_TRAINING, BenchDevice

VARIANTS = ("h2d-pageable", "h2d-pinned", "d2h-pageable", "d2h-pinned")


def unsupported(device: BenchDevice, variant: str) -> str | None:
    if device.is_ddp:
        return DDP_ONLY_TRAINING
    if not device.is_cuda:
        return "a host-device copy needs a CUDA device"
    if device.is_dp:
        return "a host-device copy involves one GPU; DataParallel does not apply"
    return None


def build(device: BenchDevice, variant: str, nbytes: int) -> Callable[[], torch.Tensor]:
    direction, memory = variant.split("-")
    pinned = memory == "pinned"
    host = torch.ones(nbytes // 4, dtype=torch.float32, pin_memory=pinned)
    gpu = torch.empty(nbytes // 4, dtype=torch.float32, device=device.torch_device)
    if direction == "h2d":
        return lambda: gpu.copy_(host, non_blocking=pinned)
    return lambda: host.copy_(gpu, non_blocking=pinned)
