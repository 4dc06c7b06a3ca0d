"""The ``bench`` fixture's object: what a benchmark in ``benches/`` uses to run and record itself.

A benchmark fills :attr:`Bench.info` (workload, variant, sizes), and inside
``precision.settings(...)`` builds its step with a workload module and calls
:meth:`Bench.run`; then it names its throughput with :meth:`Bench.throughput`. Timing, the
record of the settings in force, device context and cold start are handled here and in
:mod:`devicebench.timing`, the same way for every benchmark.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from . import precision as _precision
from .config import Rounds, Size
from .devices import BenchDevice
from .progress import Progress
from .timing import measure, timed_setup


class Bench:
    def __init__(self, benchmark, size: Size, progress: Progress | None = None):
        self.benchmark = benchmark
        self.size = size
        self.progress = progress

    @property
    def info(self) -> dict:
        """The benchmark's ``extra_info``: stored with its result in the run JSON."""
        return self.benchmark.extra_info

    @staticmethod
    def skip_if(reason: str | None) -> None:
        """Skip with ``reason`` when a workload says this device/variant pair does not apply."""
        if reason:
            pytest.skip(reason)

    def run(
        self,
        device: BenchDevice,
        step: Callable[[], Any],
        *,
        setup: Callable[[], None] | None = None,
        rounds: Rounds | None = None,
    ) -> Any:
        """Time ``step`` on ``device``; returns the last timed call's result.

        Call it inside ``precision.settings(...)``, around the step's construction too (a CUDA
        graph bakes in the settings in force at capture); the settings are recorded here.
        ``rounds`` defaults to the size's budget; a workload with its own (the CNN's) passes it.
        """
        self.info.update(device.describe())
        self.info["size"] = self.size.name
        self.info["precision"] = _precision.current()
        return measure(self.benchmark, device, step, rounds=rounds or self.size.rounds, setup=setup, progress=self.progress)

    def setup(self, device: BenchDevice, build: Callable[[], Any]) -> Any:
        """``build()``, timed to the end of its device work and recorded as ``setup_s`` (never a round)."""
        built, self.info["setup_s"] = timed_setup(device, build)
        return built

    @property
    def median_s(self) -> float | None:
        stats = getattr(self.benchmark, "stats", None)
        return stats.stats.median if stats else None

    def round_times(self) -> list[float]:
        """Every timed round's seconds, in order (empty when timing was disabled)."""
        stats = getattr(self.benchmark, "stats", None)
        return list(stats.stats.data) if stats else []

    def call_times(self) -> list[float]:
        """Seconds of every call in order: the cold one, the warm-up ones, the timed rounds."""
        timed = self.round_times()
        if not timed:
            return []
        return [self.info["cold_start_s"], *self.info["warmup_s"], *timed]

    def throughput(self, unit: str, work_per_call: float) -> None:
        """Record ``unit`` (``tflops``, ``gbps``, ``steps_per_s``, ...) = work per call / median time."""
        median = self.median_s
        if median:
            self.info[unit] = work_per_call / median
            self.info["throughput_unit"] = unit
