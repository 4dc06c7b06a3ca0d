"""A CUDA device in miniature, for the timing tests: the hardware boundary, and nothing above it.

A step launches work into a :class:`FakeStream` and returns at once, as a kernel launch does;
the work "runs" on the device one item after another; :meth:`FakeCudaDevice.synchronize`
waits until it has finished; a :class:`FakeEvent` recorded into the stream takes the time
at which the stream reaches it. Everything above this (``timing.measure`` and
pytest-benchmark's own fixture) is the real code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from devicebench.measure.devices import BenchDevice


class FakeStream:
    def __init__(self):
        self.busy_until = 0.0
        self.launched = 0  # work items queued so far

    def launch(self, seconds: float) -> None:
        self.busy_until = max(time.perf_counter(), self.busy_until) + seconds
        self.launched += 1

    def reached(self) -> float:
        """When an item queued now would run: after everything queued before it."""
        return max(time.perf_counter(), self.busy_until)

    def pending_s(self) -> float:
        return max(0.0, self.busy_until - time.perf_counter())

    def synchronize(self) -> None:
        while self.pending_s() > 0:
            time.sleep(min(self.pending_s(), 1e-3))


class FakeEvent:
    """``torch.cuda.Event(enable_timing=True)``'s record / elapsed_time, on a FakeStream."""

    def __init__(self, stream: FakeStream):
        self.stream = stream
        self.at: float | None = None
        self.launched: int | None = None  # items queued before it: which calls it separates

    def record(self) -> None:
        self.at = self.stream.reached()
        self.launched = self.stream.launched

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.at is not None and end.at is not None, "elapsed_time of an event never recorded"
        return (end.at - self.at) * 1e3  # milliseconds, as CUDA's


@dataclass(frozen=True)
class FakeCudaDevice(BenchDevice):
    """``cuda:0`` as timing sees it: events, a sync, memory counters; no CUDA needed."""

    id: str = "cuda:0"
    torch_device: torch.device = torch.device("cuda", 0)
    stream: FakeStream = field(default_factory=FakeStream)
    events: list = field(default_factory=list)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def timing_event(self) -> FakeEvent:
        event = FakeEvent(self.stream)
        self.events.append(event)
        return event

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory_bytes(self) -> int:
        return 0


@dataclass(frozen=True)
class FakeQueueCpu(BenchDevice):
    """A device without events whose queued work, too, is done only when the host waits for it."""

    id: str = "cpu"
    torch_device: torch.device = torch.device("cpu")
    stream: FakeStream = field(default_factory=FakeStream)

    def synchronize(self) -> None:
        self.stream.synchronize()
