"""The devices a benchmark runs on: ``cpu``, ``cuda:0``, DataParallel and DistributedDataParallel.

``device_params`` builds the pytest parameters (with their ``gpu``/``multi_gpu`` marks and
skip reasons); ``open_device`` turns a parameter id into a :class:`BenchDevice`, the one
object that knows how to place tensors, wrap a model and wait for the device to finish.

Ids: ``cpu``; ``cuda:0``; ``dp`` (DataParallel over every visible GPU); ``ddp:cpu`` (two
gloo processes); ``ddp:cuda`` (one NCCL process per visible GPU). With N >= 2 GPUs the
scaling ladder ``dp:K`` and ``ddp:cuda:K`` (K = 1..N-1 GPUs) joins them, so one run holds
DataParallel and DDP at every world size from 1 to N. Selecting ``dp`` or ``ddp:cuda`` in
``--bench-devices`` selects its whole ladder; ``dp:2`` alone selects one rung.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass
from typing import Any

import pytest
import torch

DEVICE_IDS = ("cpu", "cuda:0", "dp", "ddp:cpu", "ddp:cuda")
# Ids with a GPU count: DataParallel or DDP over the first K GPUs.
LADDER = re.compile(r"^(dp|ddp:cuda):([1-9][0-9]*)$")
# DistributedDataParallel on the CPU: two processes on gloo, so a CPU-only machine (and CI)
# runs the distributed path end to end.
DDP_CPU_WORLD_SIZE = 2
DDP_ONLY_TRAINING = "DistributedDataParallel is measured on the CNN's training epochs"
VALID = f"valid devices: {', '.join(DEVICE_IDS)}, dp:K, ddp:cuda:K"


def is_known(device_id: str) -> bool:
    return device_id in DEVICE_IDS or LADDER.match(device_id) is not None


def gpus_used(device_id: str, gpu_count: int | None = None) -> int:
    """How many GPUs a device id runs on (0 for the CPU ones); ``dp``/``ddp:cuda`` take every visible one."""
    if device_id in ("cpu", "ddp:cpu"):
        return 0
    if device_id == "cuda:0":
        return 1
    ladder = LADDER.match(device_id)
    if ladder:
        return int(ladder.group(2))
    return torch.cuda.device_count() if gpu_count is None else gpu_count


def parse_device_list(text: str) -> tuple[str, ...]:
    """``"cpu,cuda:0"`` -> ``("cpu", "cuda:0")``; an unknown id is a ValueError naming the valid ones."""
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    if not ids:
        raise ValueError(f"no device given; {VALID}")
    unknown = [i for i in ids if not is_known(i)]
    if unknown:
        raise ValueError(f"unknown device {', '.join(map(repr, unknown))}; {VALID}")
    return tuple(dict.fromkeys(ids))


def is_selected(device_id: str, selected: tuple[str, ...]) -> bool:
    """``dp`` and ``ddp:cuda`` select their ladders (``dp:K``, ``ddp:cuda:K``) too."""
    ladder = LADDER.match(device_id)
    return device_id in selected or (ladder is not None and ladder.group(1) in selected)


def all_ids(selected: tuple[str, ...] = (), gpu_count: int | None = None) -> list[str]:
    """Every device id of this machine, in a fixed order: the five base ids, the ladders below
    the GPU count, and any ladder rung selected by name (skipped later if the GPUs are missing)."""
    count = torch.cuda.device_count() if gpu_count is None else gpu_count
    ids = list(DEVICE_IDS)
    for family in ("dp", "ddp:cuda"):
        rungs = set(range(1, count))
        rungs |= {int(m.group(2)) for m in map(LADDER.match, selected) if m and m.group(1) == family}
        at = ids.index(family)
        ids[at:at] = [f"{family}:{k}" for k in sorted(rungs)]
    return ids


def unavailable_reason(device_id: str) -> str | None:
    """Why this machine cannot run ``device_id``, or None when it can."""
    from . import launch

    launched = launch.skip_reason(device_id)
    if launched:
        return launched
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
    if device_id.startswith("ddp:cuda") and not torch.distributed.is_nccl_available():
        return "this torch build has no NCCL backend"
    needed, visible = max(1, gpus_used(device_id)), torch.cuda.device_count()
    if needed > visible:
        return f"needs {needed} GPUs, {visible} visible"
    return None


def device_params(selected: tuple[str, ...], gpu_count: int | None = None) -> list:
    """One ``pytest.param`` per device id, in a fixed order, skipped with a reason where absent.

    Devices left out by ``--bench-devices`` stay in the list as skips, so that a stored run
    says "not selected" instead of looking as if the benchmark had been removed.
    """
    count = torch.cuda.device_count() if gpu_count is None else gpu_count
    params = []
    for device_id in all_ids(selected, count):
        marks = []
        if device_id not in ("cpu", "ddp:cpu"):
            marks.append(pytest.mark.gpu)
            if gpus_used(device_id, count) >= 2:
                marks.append(pytest.mark.multi_gpu)
        if not is_selected(device_id, selected):
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
    # Under torchrun this process is one rank (see devicebench.launch): ``group`` is a gloo
    # group of all ranks, which synchronize() and agree() use; ``launch`` is what torchrun set.
    group: Any = None
    launch: Any = None

    @property
    def kind(self) -> str:
        return self.torch_device.type

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def is_dp(self) -> bool:
        return self.id == "dp" or self.id.startswith("dp:")

    @property
    def is_ddp(self) -> bool:
        return self.id.startswith("ddp:")

    @property
    def drives_ranks(self) -> bool:
        """DDP from pytest: the ranks are child processes and this one only sends them work."""
        return self.is_ddp and self.launch is None

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
        if self.group is not None:  # and every rank, on every node, has finished too
            import torch.distributed as dist

            dist.barrier(group=self.group)

    def agree(self, value):
        """Rank 0's ``value`` on every rank (so all run the same number of rounds); itself elsewhere."""
        if self.group is None:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def describe(self) -> dict:
        """What a result records about its device."""
        info = {"device": self.id, "device_type": self.kind}
        if self.is_cuda:
            info["device_name"] = torch.cuda.get_device_name(self.torch_device)
        if self.is_ddp:
            info.update(world_size=self.world_size, backend=self.backend)
            if self.launch is not None:
                info.update(self.launch.describe())
            elif self.world_size == 1:
                info["ddp_note"] = "world size 1: a single GPU is visible" if self.id == "ddp:cuda" else "world size 1"
        if self.is_dp:
            info["dp_replicas"] = self.replicas
            if self.replicas == 1:
                info["dp_note"] = "one-replica DataParallel: a single GPU is visible" if self.id == "dp" else "one-replica DataParallel"
        return info

    def timing_event(self):
        """A device-side timestamp for :mod:`devicebench.timing`: a CUDA event on CUDA, None elsewhere.

        It is recorded into the device's queue and read after a sync, so it measures the work
        itself, independently of the host's timer.
        """
        if not self.is_cuda:
            return None
        return torch.cuda.Event(enable_timing=True)

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
    from . import launch

    if launch.current() is not None and device_id.startswith("ddp:"):
        return launch.rank_device(device_id)
    if device_id == "cpu":
        return BenchDevice(id="cpu", torch_device=torch.device("cpu"))
    if device_id == "cuda:0":
        dev = torch.device("cuda", 0)
        return BenchDevice(id="cuda:0", torch_device=dev, sync_devices=(dev,))
    if not is_known(device_id):
        raise ValueError(f"unknown device {device_id!r}; {VALID}")
    if device_id == "ddp:cpu":
        return BenchDevice(id="ddp:cpu", torch_device=torch.device("cpu"), replicas=DDP_CPU_WORLD_SIZE)
    count = gpus_used(device_id)
    if device_id.startswith("ddp:cuda"):
        # The parent only drives the ranks; each rank waits for its own GPU before answering.
        return BenchDevice(id=device_id, torch_device=torch.device("cuda", 0), replicas=count)
    devs = tuple(torch.device("cuda", i) for i in range(count))
    return BenchDevice(id=device_id, torch_device=devs[0], sync_devices=devs, replicas=count)


def rank_device(device_id: str, rank: int, world_size: int, gpu: int | None = None, **launched) -> BenchDevice:
    """The device of one DDP rank, inside its own process: the CPU, or GPU ``gpu`` (default: ``rank``)."""
    if device_id.startswith("ddp:cuda"):
        dev = torch.device("cuda", rank if gpu is None else gpu)
        return BenchDevice(id=device_id, torch_device=dev, sync_devices=(dev,), replicas=world_size, **launched)
    return BenchDevice(id=device_id, torch_device=torch.device("cpu"), replicas=world_size, **launched)
