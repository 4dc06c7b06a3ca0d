"""The devices a benchmark runs on: ``cpu``, ``cuda:0``, ``mps``, DataParallel and DistributedDataParallel.

Each device id is a kind of device (a :mod:`devicebench.measure.backends` entry) in a mode: one
device, DataParallel over several, or DDP ranks. :func:`device_specs` lists them for this
machine with why each is missing (the pytest wiring turns them into parameters with marks
and skips); :func:`open_device` turns an id into a :class:`BenchDevice`, the one object that
knows how to place tensors, wrap a model, wait for the device and what it supports.

Ids: ``cpu``; ``cuda:0``; ``dp`` (DataParallel over every visible GPU); ``ddp:cpu`` (two
gloo processes); ``ddp:cuda`` (one NCCL process per visible GPU); ``mps`` (Apple silicon).
With N >= 2 GPUs the scaling ladder ``dp:K`` and ``ddp:cuda:K`` (K = 1..N-1 GPUs) joins them,
so one run holds DataParallel and DDP at every world size from 1 to N. Selecting ``dp`` or
``ddp:cuda`` in ``--bench-devices`` selects its whole ladder; ``dp:2`` alone selects one rung.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

import torch

from devicebench.reading.kinds import DEVICE_IDS, KINDS, LADDER, VALID, is_known, is_selected, kind_of

from . import backends, env
from .backends import Backend

# DistributedDataParallel on the CPU: two processes on gloo, so a CPU-only machine (and CI)
# runs the distributed path end to end.
DDP_CPU_WORLD_SIZE = 2
ONLY_DDP = "launched by torchrun: only ddp:cpu and ddp:cuda run (other benchmarks would share the node with the ranks)"


def gpus_used(device_id: str, gpu_count: int | None = None) -> int:
    """How many GPUs a device id runs on (0 for the CPU ones); ``dp``/``ddp:cuda`` take every visible one."""
    kind = kind_of(device_id)
    if not backends.BACKENDS[kind.backend].accelerator:
        return 0
    ladder = LADDER.match(device_id)
    if ladder:
        return int(ladder.group(2))
    if kind.mode == "single":
        return 1
    return backends.BACKENDS[kind.backend].count() if gpu_count is None else gpu_count


def all_ids(selected: tuple[str, ...] = (), gpu_count: int | None = None) -> list[str]:
    """Every device id of this machine, in a fixed order: the base ids, the ladders below the
    GPU count, and any ladder rung selected by name (skipped later if the GPUs are missing)."""
    count = backends.BACKENDS["cuda"].count() if gpu_count is None else gpu_count
    ids = list(DEVICE_IDS)
    for kind in (k for k in KINDS if k.ladder):
        rungs = set(range(1, count))
        rungs |= {int(m.group(2)) for m in map(LADDER.match, selected) if m and m.group(1) == kind.id}
        at = ids.index(kind.id)
        ids[at:at] = [f"{kind.id}:{k}" for k in sorted(rungs)]
    return ids


def launch_skip_reason(device_id: str) -> str | None:
    """Why a device does not run under this torchrun job, or None (also when not launched)."""
    launch = env.current()
    if launch is None:
        return None
    if device_id not in ("ddp:cpu", "ddp:cuda"):
        if device_id.startswith("ddp:cuda:"):
            return f"launched by torchrun: the world size is the launcher's ({launch.world_size}), not {device_id}'s"
        return ONLY_DDP
    count = backends.BACKENDS["cuda"].count()
    if device_id == "ddp:cuda" and count < launch.local_world_size:
        return f"launched by torchrun with {launch.local_world_size} ranks on this node, but {count} GPUs are visible"
    return None


def unavailable_reason(device_id: str) -> str | None:
    """Why this machine cannot run ``device_id``, or None when it can."""
    return launch_skip_reason(device_id) or missing_hardware(device_id)


def missing_hardware(device_id: str) -> str | None:
    """What this machine lacks to run ``device_id`` (its device, its collective, enough GPUs), or None."""
    kind = kind_of(device_id)
    backend = backends.BACKENDS[kind.backend]
    missing = backend.unavailable()
    if missing:
        return missing
    if kind.mode == "ddp":
        missing = backend.collective_available()
        if missing:
            return missing
    if backend.accelerator:
        needed, visible = max(1, gpus_used(device_id)), backend.count()
        if needed > visible:
            return f"needs {needed} GPUs, {visible} visible"
    return None


class NotInRanks(RuntimeError):
    """A model placed on a DDP device by code that runs in one process (the pytest wiring skips it)."""


NO_RANKS = "a DDP device runs the suite's DDP workloads in processes of their own; this benchmark runs in one process"


@dataclass(frozen=True)
class DeviceSpec:
    """One device parameter of this machine: the pytest wiring makes it a parameter with marks."""

    id: str
    accelerator: bool  # marked ``gpu``
    gpus: int  # 2 or more: marked ``multi_gpu``
    skip: str | None  # why it is skipped, or None


def device_specs(selected: tuple[str, ...], gpu_count: int | None = None) -> list[DeviceSpec]:
    """Every device id, in a fixed order, with why it is skipped where it is.

    Devices left out by ``--bench-devices`` stay in the list as skips, so that a stored run
    says "not selected" instead of looking as if the benchmark had been removed.
    """
    count = backends.BACKENDS["cuda"].count() if gpu_count is None else gpu_count
    specs = []
    for device_id in all_ids(selected, count):
        accelerator = backends.BACKENDS[kind_of(device_id).backend].accelerator
        if not is_selected(device_id, selected):
            skip = f"not selected by --bench-devices={','.join(selected)}"
        else:
            skip = unavailable_reason(device_id)
        specs.append(DeviceSpec(device_id, accelerator, gpus_used(device_id, count), skip))
    return specs


@dataclass(frozen=True)
class BenchDevice:
    """Where a benchmark runs.

    ``torch_device`` is where inputs live (for ``dp``, the first GPU, from which DataParallel
    scatters); ``sync_devices`` are all the devices whose queued work a timed interval must
    wait for. What the device can do comes from its backend (:meth:`supports`).
    """

    id: str
    torch_device: torch.device
    sync_devices: tuple[torch.device, ...] = ()
    replicas: int = 1
    # Under torchrun this process is one rank (see devicebench.measure.distributed): ``group`` is a
    # gloo group of all ranks, which synchronize() and agree() use; ``launch`` is what torchrun set.
    group: Any = None
    launch: Any = None
    rank: int | None = None  # in a DDP rank's own process: its rank

    @property
    def backend(self) -> Backend:
        return backends.of(self.torch_device)

    @property
    def device_type(self) -> str:
        """torch's device type (``cpu``, ``cuda``, ``mps``); the kind of device *id* is :func:`kinds.kind_of`."""
        return self.torch_device.type

    @property
    def mode(self) -> str:
        return kind_of(self.id).mode if is_known(self.id) else "single"

    def supports(self, feature: str) -> bool:
        return self.backend.supports(feature)

    @property
    def is_accelerator(self) -> bool:
        return self.backend.accelerator

    @property
    def is_dp(self) -> bool:
        return self.mode == "dp"

    @property
    def is_ddp(self) -> bool:
        return self.mode == "ddp"

    @property
    def drives_ranks(self) -> bool:
        """DDP from pytest: the ranks are child processes and this one only sends them work."""
        return self.is_ddp and self.rank is None

    @property
    def world_size(self) -> int:
        return self.replicas if self.is_ddp else 1

    @property
    def collective(self) -> str | None:
        """The DDP backend of this device's ranks (gloo, nccl), or None outside DDP."""
        return self.backend.collective if self.is_ddp else None

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model moved to the device; for ``dp``, wrapped in DataParallel over every GPU."""
        if self.drives_ranks:
            raise NotInRanks(NO_RANKS)
        model = model.to(self.torch_device)
        if self.is_dp:
            model = torch.nn.DataParallel(model, device_ids=list(range(self.replicas)))
        elif self.is_ddp:
            # Inside one rank's process, with its process group already initialised.
            ids = [self.torch_device.index] if self.is_accelerator else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return model

    def synchronize(self) -> None:
        """Wait until every queued kernel on every device used has finished.

        Only :mod:`devicebench.measure.timing` calls this: it is the one place a timed interval ends.
        """
        for dev in self.sync_devices:
            self.backend.synchronize(dev)
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

    def timing_event(self):
        """A device-side timestamp for :mod:`devicebench.measure.timing` (a CUDA event), or None.

        It is recorded into the device's queue and read after a sync, so it measures the work
        itself, independently of the host's timer.
        """
        return self.backend.event() if self.supports("events") else None

    def monitor(self):
        """What reads the device's sensors (clocks, throttling, energy) around the timed rounds."""
        return self.backend.monitor(self.sync_devices or (self.torch_device,))

    def describe(self) -> dict:
        """What a result records about its device."""
        info = {"device": self.id, "device_type": self.device_type}
        name = self.backend.name(self.torch_device)
        if name:
            info["device_name"] = name
        if self.is_ddp:
            info.update(world_size=self.world_size, backend=self.collective)
            if self.launch is not None:
                info.update(self.launch.describe())
            elif self.world_size == 1:
                info["ddp_note"] = "world size 1: a single GPU is visible" if self.id == "ddp:cuda" else "world size 1"
        if self.is_dp:
            info["dp_replicas"] = self.replicas
            if self.replicas == 1:
                info["dp_note"] = "one-replica DataParallel: a single GPU is visible" if self.id == "dp" else "one-replica DataParallel"
        return info

    def counting(self):
        """A context around one counted call: what the device counts of its own work (CUDA: kernels, syncs), filled in on exit."""
        return self.backend.counting(self.sync_devices or (self.torch_device,))

    def peak_memory_bytes(self) -> int | None:
        if not self.sync_devices or not self.supports("peak_memory"):
            return None
        return max(self.backend.peak_memory_bytes(d) or 0 for d in self.sync_devices)

    def reset_peak_memory(self) -> None:
        for dev in self.sync_devices:
            self.backend.reset_peak_memory(dev)

    def release_memory(self) -> None:
        """Give cached device memory back, so that one benchmark's failure does not starve the next."""
        gc.collect()
        for dev in self.sync_devices:
            self.backend.release_memory(dev)


def open_device(device_id: str) -> BenchDevice:
    """The device of one id in this process (DDP: the parent that drives the ranks)."""
    if not is_known(device_id):
        raise ValueError(f"unknown device {device_id!r}; {VALID}")
    kind = kind_of(device_id)
    backend = backends.BACKENDS[kind.backend]
    if kind.mode == "ddp":
        if not backend.accelerator:
            return BenchDevice(id=device_id, torch_device=backend.device(), replicas=DDP_CPU_WORLD_SIZE)
        # The parent only drives the ranks; each rank waits for its own GPU before answering.
        return BenchDevice(id=device_id, torch_device=backend.device(0), replicas=gpus_used(device_id))
    if kind.mode == "dp":
        devs = tuple(backend.device(i) for i in range(gpus_used(device_id)))
        return BenchDevice(id=device_id, torch_device=devs[0], sync_devices=devs, replicas=len(devs))
    dev = backend.device(0)
    return BenchDevice(id=device_id, torch_device=dev, sync_devices=(dev,) if backend.accelerator else ())


def rank_device(device_id: str, rank: int, world_size: int, local: int | None = None, **launched) -> BenchDevice:
    """The device of one DDP rank, inside its own process: the CPU, or GPU ``local`` (default: ``rank``)."""
    backend = backends.BACKENDS[kind_of(device_id).backend]
    if backend.accelerator:
        dev = backend.device(rank if local is None else local)
        return BenchDevice(id=device_id, torch_device=dev, sync_devices=(dev,), replicas=world_size, rank=rank, **launched)
    return BenchDevice(id=device_id, torch_device=backend.device(), replicas=world_size, rank=rank, **launched)
