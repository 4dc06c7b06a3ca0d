"""The devices a benchmark runs on: ``cpu``, ``cuda:0`` and ``dp`` (DataParallel).

``device_params`` builds the pytest parameters (with their ``gpu`` marks and skip reasons);
``open_device`` turns a parameter id into a :class:`BenchDevice`, the one object that knows
how to place tensors, wrap a model and wait for the device to finish.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import pytest
import torch

DEVICE_IDS = ("cpu", "cuda:0", "dp", "ddp:cpu", "ddp:cuda")
GPU_IDS = frozenset({"cuda:0", "dp", "ddp:cuda"})
# DistributedDataParallel on the CPU: two processes on gloo, so a CPU-only machine (and CI)
# runs the distributed path end to end.
DDP_CPU_WORLD_SIZE = 2
DDP_ONLY_TRAINING = "DistributedDataParallel is measured on the CNN's training epochs"


def parse_device_list(text: str) -> tuple[str, ...]:
    """``"cpu,cuda:0"`` -> ``("cpu", "cuda:0")``; an unknown id is a ValueError naming the valid ones."""
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    if not ids:
        raise ValueError(f"no device given; valid devices: {', '.join(DEVICE_IDS)}")
    unknown = [i for i in ids if i not in DEVICE_IDS]
    if unknown:
        raise ValueError(f"unknown device {', '.join(map(repr, unknown))}; valid devices: {', '.join(DEVICE_IDS)}")
    return tuple(dict.fromkeys(ids))


def unavailable_reason(device_id: str) -> str | None:
    """Why this machine cannot run ``device_id``, or None when it can."""
    if device_id == "cpu":
        return None
    if device_id.startswith("ddp:"):
        import torch.distributed as dist

        if not dist.is_available():
            return "this torch build has no torch.distributed"
        if device_id == "ddp:cpu" and not dist.is_gloo_available():
            return "this torch build has no gloo backend"
    if device_id == "ddp:cpu":
        return None
    if not torch.cuda.is_available():
        return "CUDA not available"
    if device_id == "ddp:cuda" and not torch.distributed.is_nccl_available():
        return "this torch build has no NCCL backend"
    if device_id == "cuda:0" and torch.cuda.device_count() < 1:
        return "needs 1 GPU"
    return None


def device_params(selected: tuple[str, ...]) -> list:
    """One ``pytest.param`` per device id, in a fixed order, skipped with a reason where absent.

    Devices left out by ``--bench-devices`` stay in the list as skips, so that a stored run
    says "not selected" instead of looking as if the benchmark had been removed.
    """
    params = []
    for device_id in DEVICE_IDS:
        marks = [pytest.mark.gpu] if device_id in GPU_IDS else []
        if device_id not in selected:
            marks.append(pytest.mark.skip(reason=f"not selected by --bench-devices={','.join(selected)}"))
        else:
            reason = unavailable_reason(device_id)
            if reason:
                marks.append(pytest.mark.skip(reason=reason))
        params.append(pytest.param(device_id, id=device_id, marks=marks))
    return params


@dataclass(frozen=True)
class BenchDevice:
    """Where a benchmark runs.

    ``torch_device`` is where inputs live (for ``dp``, the first GPU, from which DataParallel
    scatters); ``sync_devices`` are all the devices whose queued work a timed interval must wait for.
    """

    id: str
    torch_device: torch.device
    sync_devices: tuple[torch.device, ...] = ()
    replicas: int = 1

    @property
    def kind(self) -> str:
        return self.torch_device.type

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def is_dp(self) -> bool:
        return self.id == "dp"

    @property
    def is_ddp(self) -> bool:
        return self.id.startswith("ddp:")

    @property
    def world_size(self) -> int:
        return self.replicas if self.is_ddp else 1

    @property
    def backend(self) -> str | None:
        if not self.is_ddp:
            return None
        return "nccl" if self.is_cuda else "gloo"

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model moved to the device; for ``dp``, wrapped in DataParallel over every GPU."""
        model = model.to(self.torch_device)
        if self.is_dp:
            model = torch.nn.DataParallel(model, device_ids=list(range(self.replicas)))
        elif self.is_ddp:
            # Inside one rank's process, with its process group already initialised.
            ids = [self.torch_device.index] if self.is_cuda else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return model

    def synchronize(self) -> None:
        """Wait until every queued kernel on every device used has finished.

        Only :mod:`devicebench.timing` calls this: it is the one place a timed interval ends.
        """
        for dev in self.sync_devices:
            torch.cuda.synchronize(dev)

    def describe(self) -> dict:
        """What a result records about its device."""
        info = {"device": self.id, "device_type": self.kind}
        if self.is_cuda:
            info["device_name"] = torch.cuda.get_device_name(self.torch_device)
        if self.is_ddp:
            info.update(world_size=self.world_size, backend=self.backend)
            if self.world_size == 1:
                info["ddp_note"] = "world size 1: a single GPU is visible"
        if self.is_dp:
            info["dp_replicas"] = self.replicas
            if self.replicas == 1:
                info["dp_note"] = "one-replica DataParallel: a single GPU is visible"
        return info

    def peak_memory_bytes(self) -> int | None:
        if not (self.is_cuda and self.sync_devices):
            return None
        return max(torch.cuda.max_memory_allocated(d) for d in self.sync_devices)

    def reset_peak_memory(self) -> None:
        for dev in self.sync_devices:
            torch.cuda.reset_peak_memory_stats(dev)

    def release_memory(self) -> None:
        """Give cached device memory back, so that one benchmark's failure does not starve the next."""
        gc.collect()
        if self.is_cuda:
            for dev in self.sync_devices:
                with torch.cuda.device(dev):
                    torch.cuda.empty_cache()


def open_device(device_id: str) -> BenchDevice:
    if device_id == "cpu":
        return BenchDevice(id="cpu", torch_device=torch.device("cpu"))
    if device_id == "cuda:0":
        dev = torch.device("cuda", 0)
        return BenchDevice(id="cuda:0", torch_device=dev, sync_devices=(dev,))
    if device_id == "dp":
        count = torch.cuda.device_count()
        devs = tuple(torch.device("cuda", i) for i in range(count))
        return BenchDevice(id="dp", torch_device=devs[0], sync_devices=devs, replicas=count)
    if device_id == "ddp:cpu":
        return BenchDevice(id="ddp:cpu", torch_device=torch.device("cpu"), replicas=DDP_CPU_WORLD_SIZE)
    if device_id == "ddp:cuda":
        # The parent only drives the ranks; each rank waits for its own GPU before answering.
        return BenchDevice(id="ddp:cuda", torch_device=torch.device("cuda", 0), replicas=torch.cuda.device_count())
    raise ValueError(f"unknown device {device_id!r}; valid devices: {', '.join(DEVICE_IDS)}")


def rank_device(device_id: str, rank: int, world_size: int) -> BenchDevice:
    """The device of one DDP rank, inside its own process: the CPU, or GPU number ``rank``."""
    if device_id == "ddp:cuda":
        dev = torch.device("cuda", rank)
        return BenchDevice(id=device_id, torch_device=dev, sync_devices=(dev,), replicas=world_size)
    return BenchDevice(id=device_id, torch_device=torch.device("cpu"), replicas=world_size)
