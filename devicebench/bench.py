"""The ``bench`` fixture's object: what a benchmark uses to run and record itself.

For your own model (see README, "Your own models"):

    def test_my_model(bench, device):
        model = device.wrap(MyModel())          # on the device; DataParallel on ``dp``
        x = torch.randn(64, 128, device=device.torch_device)
        bench.run(device, lambda: model(x))     # synchronized, warmed up, repeated, stored
        bench.throughput("samples_per_s", 64)

The suite's own benchmarks declare their workloads (:mod:`devicebench.workloads`) and call
:meth:`Bench.measure`, which skips what does not apply, sets the variant's numeric
settings, builds and times the step, records its throughput and checks what it learned.
Timing, the record of the settings in force and the cold start are handled here and in
:mod:`devicebench.timing`, the same way for every benchmark.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from . import devices
from . import precision as _precision
from .config import Rounds, Size
from .devices import BenchDevice
from .progress import Progress
from .timing import measure, timed_setup
from .workloads import Context, Timed, Workload



class Bench:
    def __init__(self, benchmark, size: Size, progress: Progress | None = None, precision: float | None = None):
        self.benchmark = benchmark
        self.size = size
        self.progress = progress
        self.precision = precision  # --bench-precision; None: the size's

    @property
    def info(self) -> dict:
        """The benchmark's ``extra_info``: stored with its result in the run JSON."""
        return self.benchmark.extra_info

    def run(
        self,
        device: BenchDevice,
        step: Callable[[], Any],
        *,
        setup: Callable[[], None] | None = None,
        rounds: Rounds | None = None,
        ranks: bool = False,
    ) -> Any:
        """Time ``step`` on ``device``; returns the last timed call's result.

        ``step`` queues its work and returns; every timed interval ends when the device has
        finished it. ``setup`` runs, untimed, before every call. ``rounds`` defaults to the
        size's budget. A benchmark that drives DDP ranks says so (``ranks=True``); any other
        is skipped on a DDP device, where it would run in the parent process alone.
        """
        if device.drives_ranks and not ranks:
            pytest.skip(devices.NO_RANKS)
        self.info.update(device.describe())
        self.info["size"] = self.size.name
        params = self.benchmark.params
        if not isinstance(params, dict) or "device" not in params:
            # Every result names its device among its parameters, a host workload too, so that
            # pytest-benchmark's ``--group-by param:device`` finds it (a new dict: the test's own stays as pytest made it).
            self.benchmark.params = {**(params or {}), "device": device.id}
        self.info["precision"] = _precision.current()
        rounds = rounds or self.size.rounds
        if self.precision is not None:
            rounds = rounds.with_precision(self.precision)
        return measure(self.benchmark, device, step, rounds=rounds, setup=setup, progress=self.progress)

    def setup(self, device: BenchDevice, build: Callable[[], Any]) -> Any:
        """``build()``, timed to the end of its device work and recorded as ``setup_s`` (never a round)."""
        built, self.info["setup_s"] = timed_setup(device, build)
        return built

    def measure(self, workload: Workload, device: BenchDevice | None, variant_name: str, context: Context) -> None:
        """One declared workload's variant on ``device`` (None: a host workload, on the CPU)."""
        variant = workload.variant(variant_name)
        reason = devices.launch_skip_reason("cpu") if device is None else None
        reason = reason or workload.unsupported(device, variant)
        if reason:
            pytest.skip(reason)
        device = device or devices.open_device("cpu")
        size = workload.size(self.size.name)
        self.info.update(workload=workload.name, variant=variant.name, **workload.size_fields(self.size.name))
        if self.benchmark.group is None:
            self.benchmark.group = workload.name  # pytest-benchmark's table: one per workload, in a unit that fits it
        # The settings are in force around the build too: a CUDA graph bakes in those of its capture.
        with _precision.settings(variant.precision):
            step = self.setup(device, lambda: workload.build(device, variant, size, context))
            try:
                self.info.update(step.info)
                last = self.run(device, step.call, setup=step.setup, rounds=step.rounds, ranks=True)
                if step.work is not None:
                    self.throughput(step.unit or workload.unit, step.work)
                if step.finish is not None:
                    timed = Timed(last, self.round_times(), self.call_times(), self.median_s, self.info["setup_s"])
                    self.info.update(step.finish(timed))
            finally:
                if step.close is not None:
                    step.close()

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
        """Record ``unit`` (``tflops``, ``gb_per_s``, ``steps_per_s``, ``samples_per_s``, ...) = work per call / median time."""
        median = self.median_s
        if median:
            self.info[unit] = work_per_call / median
            self.info["throughput_unit"] = unit
