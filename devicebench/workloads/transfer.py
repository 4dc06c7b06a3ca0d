"""Moving a tensor between host and device, as the tutorial's ``.to("cuda:0")`` and ``.cpu()`` do.

Pageable host memory is staged through a driver buffer; pinned (page-locked) memory is read
by the device's copy engine directly, which is what ``DataLoader(pin_memory=True)`` buys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from devicebench.measure.config import MiB

from . import Step, Variant, Workload


@dataclass(frozen=True)
class TransferSize:
    """Host-to-device and device-to-host copies, as ``.to("cuda:0")`` and ``.cpu()`` do."""

    nbytes: int


def build(device, variant: Variant, size: TransferSize, context=None) -> Step:
    direction, memory = variant.name.split("-")
    pinned = memory == "pinned"
    host = torch.ones(size.nbytes // 4, dtype=torch.float32, pin_memory=pinned)
    on_device = torch.empty(size.nbytes // 4, dtype=torch.float32, device=device.torch_device)
    if direction == "h2d":
        return Step(call=lambda: on_device.copy_(host, non_blocking=pinned), work=size.nbytes / 1e9)
    return Step(call=lambda: host.copy_(on_device, non_blocking=pinned), work=size.nbytes / 1e9)


_OFF_HOST = frozenset({"accelerator"})
_PINNED = frozenset({"accelerator", "pinned_memory"})

WORKLOAD = Workload(
    name="transfer",
    variants=(
        Variant("h2d-pageable", needs=_OFF_HOST),
        Variant("h2d-pinned", needs=_PINNED),
        Variant("d2h-pageable", needs=_OFF_HOST),
        Variant("d2h-pinned", needs=_PINNED),
    ),
    sizes={"seed": TransferSize(nbytes=256 * MiB), "smoke": TransferSize(nbytes=4 * MiB)},
    unit="gb_per_s",
    build=lambda *args: build(*args),
    no_dp="a host-device copy involves one GPU; DataParallel does not apply",
    size_keys=("nbytes",),
)
