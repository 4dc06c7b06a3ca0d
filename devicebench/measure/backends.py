"""Device kinds as data: what the suite asks of a CPU, a CUDA GPU or Apple's MPS, in one place.

Each :class:`Backend` answers for one kind of device: whether it is there and how many,
waiting for its queued work, device-side timestamps, memory counters, giving cached memory
back, the autocast type, the collective library of its DDP ranks, and which features it
has (:data:`FEATURES`). Workloads ask a device what it supports, never ``torch.cuda``: this is
the only module that touches ``torch.cuda`` or ``torch.mps``, so adding a kind of device (ROCm
reports itself as CUDA; Intel's ``xpu`` would be one class here) touches this file and the
device ids in :mod:`devicebench.measure.devices`, and no workload.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Iterator

import torch

from . import sensors

# What a workload variant may need of a device, and how a skip reason names it.
FEATURES = {
    "accelerator": "a device other than the host CPU",
    "events": "device-side timing events",
    "tf32": "TF32 tensor cores",
    "bf16": "bf16 tensor cores",
    "graphs": "CUDA graphs",
    "pinned_memory": "pinned host memory for copies to the device",
    "peak_memory": "a peak-memory counter",
}


class Backend:
    """The host CPU: always there, never queues work, keeps no per-device memory counters."""

    kind = "cpu"
    features: frozenset[str] = frozenset()
    autocast_type = "cpu"
    collective = "gloo"  # the DDP backend of ranks on this kind of device

    @property
    def accelerator(self) -> bool:
        return "accelerator" in self.features

    def supports(self, feature: str) -> bool:
        if feature not in FEATURES:
            raise ValueError(f"unknown device feature {feature!r}; known: {', '.join(FEATURES)}")
        return feature in self.features

    def unavailable(self) -> str | None:
        """Why this machine has no such device, or None."""
        return None

    def count(self) -> int:
        return 1

    def device(self, index: int = 0) -> torch.device:
        return torch.device(self.kind) if self.kind == "cpu" else torch.device(self.kind, index)

    def synchronize(self, device: torch.device) -> None:
        """Wait until every kernel queued on ``device`` has finished (only timing calls it)."""

    def event(self) -> Any:
        """A device-side timestamp to record into the queue, or None where there is none."""
        return None

    def reset_peak_memory(self, device: torch.device) -> None:
        pass

    def peak_memory_bytes(self, device: torch.device) -> int | None:
        return None

    def release_memory(self, device: torch.device) -> None:
        """Give cached device memory back, so one benchmark's failure does not starve the next."""

    def set_current(self, device: torch.device) -> None:
        """Make ``device`` this process's own (one DDP rank per GPU)."""

    def name(self, device: torch.device) -> str | None:
        return None

    def describe(self) -> list[dict]:
        """Every device of this kind, as a run's machine block records it (empty for the CPU)."""
        return []

    def collective_available(self) -> str | None:
        """Why DDP ranks on this kind cannot talk to each other, or None."""
        import torch.distributed as dist

        if not dist.is_available():
            return "this torch build has no torch.distributed"
        return None if dist.is_gloo_available() else "this torch build has no gloo backend"

    def collective_version(self) -> str | None:
        return None

    def monitor(self, devices: tuple[torch.device, ...]) -> sensors.Monitor:
        """What reads this kind's sensors around the timed rounds: RAPL energy for the host CPU."""
        return sensors.cpu_monitor()

    def capture(self, step: Callable[[], Any], before: Callable[[], None] | None = None, warmup: int = 3) -> tuple[Callable[[], None], Any]:
        raise NotImplementedError(f"{self.kind} has no graph capture")

    @contextlib.contextmanager
    def counting(self, devices: tuple[torch.device, ...]) -> Iterator[dict]:
        """What this kind of device counts of its own work around one call (kernels, syncs), filled in
        on exit, once the call's work has finished."""
        yield {}

    def compiler_unavailable(self, mode: str) -> str | None:
        """Why ``torch.compile`` (inductor) cannot build for this kind of device here, or None."""
        if not _compiler("CXX", ("g++", "c++", "clang++")):
            return "torch.compile's CPU backend (inductor) needs a C++ compiler, and none was found (install g++ or set CXX)"
        if mode == "reduce-overhead":
            return "reduce-overhead replays CUDA graphs; the CPU has none"
        return None


class CudaBackend(Backend):
    """NVIDIA GPUs (and AMD's, which ROCm builds of torch present as CUDA)."""

    kind = "cuda"
    features = frozenset({"accelerator", "events", "tf32", "bf16", "graphs", "pinned_memory", "peak_memory"})
    autocast_type = "cuda"
    collective = "nccl"

    def unavailable(self) -> str | None:
        return None if torch.cuda.is_available() else "CUDA not available"

    def count(self) -> int:
        return torch.cuda.device_count()

    def synchronize(self, device: torch.device) -> None:
        torch.cuda.synchronize(device)

    def event(self) -> Any:
        return torch.cuda.Event(enable_timing=True)

    def reset_peak_memory(self, device: torch.device) -> None:
        torch.cuda.reset_peak_memory_stats(device)

    def peak_memory_bytes(self, device: torch.device) -> int | None:
        return int(torch.cuda.max_memory_allocated(device))

    def release_memory(self, device: torch.device) -> None:
        if torch.cuda.is_available():
            with torch.cuda.device(device):
                torch.cuda.empty_cache()

    def set_current(self, device: torch.device) -> None:
        torch.cuda.set_device(device)

    def name(self, device: torch.device) -> str | None:
        return torch.cuda.get_device_name(device)

    def describe(self) -> list[dict]:
        if not torch.cuda.is_available():
            return []
        found = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            found.append(
                {
                    "index": i,
                    "name": props.name,
                    "memory_bytes": int(props.total_memory),
                    "capability": f"{props.major}.{props.minor}",
                    "multiprocessors": props.multi_processor_count,
                }
            )
        return found

    def collective_available(self) -> str | None:
        import torch.distributed as dist

        if not dist.is_available():
            return "this torch build has no torch.distributed"
        return None if dist.is_nccl_available() else "this torch build has no NCCL backend"

    def monitor(self, devices: tuple[torch.device, ...]) -> sensors.Monitor:
        """NVIDIA's management library: clocks, throttle reasons, temperature, power and energy."""
        return sensors.gpu_monitor([d.index or 0 for d in devices])

    def collective_version(self) -> str | None:
        version = torch.cuda.nccl.version()  # a tuple in current torch, an int in older ones
        return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)

    def compiler_unavailable(self, mode: str) -> str | None:
        from torch.utils._triton import has_triton

        if not has_triton():
            return "torch.compile's GPU backend (inductor) needs Triton, and this torch has none (pip install triton)"
        # Triton builds a small C launcher for its kernels on first use ($CC, else gcc or clang):
        # without one the compile fails inside the benchmark instead of being skipped.
        if not _compiler("CC", ("gcc", "clang")):
            return "torch.compile's GPU backend (Triton) needs a C compiler for its kernel launchers, and none was found (install gcc or set CC)"
        return None

    def capture(self, step: Callable[[], Any], before: Callable[[], None] | None = None, warmup: int = 3) -> tuple[Callable[[], None], Any]:
        """PyTorch's whole-network capture recipe: ``warmup`` steps on a side stream (optimizer state,
        library workspaces), then ``before()`` (zeroing gradients, say), then one step captured.
        Returns the graph's replay and what the captured step returned (its static outputs)."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                step()
        torch.cuda.current_stream().wait_stream(side)
        if before is not None:
            before()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = step()
        return graph.replay, out


    @contextlib.contextmanager
    def counting(self, devices: tuple[torch.device, ...]) -> Iterator[dict]:
        """The kernels the GPU ran (the profiler's CUDA activity, copies and memsets apart) and the
        host's synchronizations (``set_sync_debug_mode``'s warnings), around one call."""
        from torch.profiler import ProfilerActivity, profile

        counts: dict = {}
        before = {d: torch.cuda.memory_stats(d).get("allocated_bytes.all.allocated", 0) for d in devices}
        previous = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings(record=True) as caught, profile(activities=[ProfilerActivity.CUDA]) as prof:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield counts
            finally:
                torch.cuda.set_sync_debug_mode(previous)
                # The call's kernels finish inside the profiler's window; this wait is the counter's, not a sync of the step's.
                for device in devices:
                    torch.cuda.synchronize(device)
        counts["cuda_syncs"] = sum("synchroniz" in str(w.message) for w in caught)
        names = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        counts["cuda_kernels"] = sum(not n.lower().startswith(("memcpy", "memset")) for n in names)
        counts["cuda_copies"] = sum(n.lower().startswith("memcpy") for n in names)
        # The caching allocator's own count: every block it handed out, on every device used.
        counts["cuda_allocated_bytes"] = sum(torch.cuda.memory_stats(d).get("allocated_bytes.all.allocated", 0) - before[d] for d in devices)


class MpsBackend(Backend):
    """Apple silicon GPUs through Metal. Declared from torch's documented ``torch.mps`` API;
    no machine here has one, so it has never run (MPS benchmarks are skipped elsewhere)."""

    kind = "mps"
    features = frozenset({"accelerator", "events"})
    autocast_type = "mps"
    collective = "gloo"

    def unavailable(self) -> str | None:
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return None
        return "MPS not available (needs Apple silicon and a torch built with MPS)"

    def count(self) -> int:
        return 1 if self.unavailable() is None else 0

    def device(self, index: int = 0) -> torch.device:
        return torch.device("mps")

    def synchronize(self, device: torch.device) -> None:
        torch.mps.synchronize()

    def event(self) -> Any:
        return torch.mps.event.Event(enable_timing=True)

    def release_memory(self, device: torch.device) -> None:
        if self.unavailable() is None:
            torch.mps.empty_cache()

    def name(self, device: torch.device) -> str | None:
        return "Apple MPS"

    def monitor(self, devices: tuple[torch.device, ...]) -> sensors.Monitor:
        return sensors.Monitor("no sensors are read on MPS")

    def compiler_unavailable(self, mode: str) -> str | None:
        return "torch.compile is not measured on MPS yet"


def _compiler(variable: str, names: tuple[str, ...]) -> str | None:
    """The compiler a build would use: ``$variable`` if set (and found), else the first of ``names`` on the PATH."""
    import os
    import shutil

    chosen = os.environ.get(variable) or next((n for n in names if shutil.which(n)), None)
    return shutil.which(chosen) if chosen else None


BACKENDS: dict[str, Backend] = {b.kind: b for b in (Backend(), CudaBackend(), MpsBackend())}


def of(device: torch.device) -> Backend:
    """The backend of a torch device."""
    try:
        return BACKENDS[device.type]
    except KeyError:
        raise ValueError(f"no backend for {device.type!r} devices; known: {', '.join(BACKENDS)}") from None


def accelerators() -> list[Backend]:
    return [b for b in BACKENDS.values() if b.accelerator]
