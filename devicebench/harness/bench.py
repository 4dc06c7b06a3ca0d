"""The ``bench`` fixture's object: what a benchmark uses to run and record itself.

For your own model (docs/own-models.md):

    def test_my_model(bench, device):
        model = device.wrap(MyModel())          # on the device; DataParallel on ``dp``
        x = torch.randn(64, 128, device=device.torch_device)
        bench.run(device, lambda: model(x))     # synchronized, warmed up, repeated, stored
        bench.throughput("samples_per_s", 64)

The suite's own benchmarks declare their workloads (:mod:`devicebench.workloads`) and call
:meth:`Bench.run_workload`, which skips what does not apply, sets the variant's numeric
settings, builds and times the step, records its throughput and checks what it learned.
Timing, the record of the settings in force and the cold start are handled here and in
:mod:`devicebench.measure.timing`, the same way for every benchmark.
"""

from __future__ import annotations

import math
import numbers
import statistics
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch

from devicebench.measure import counting, devices, instructions
from devicebench.measure import precision as _precision
from devicebench.measure.config import Rounds, Size
from devicebench.measure.devices import BenchDevice
from devicebench.measure.timing import measure, timed_setup
from devicebench.reading import quality as _quality
from devicebench.reading import schema
from devicebench.workloads import COMPILE_NO_DP, Context, Timed, Workload

from . import pytest_benchmark_internals as internals
from .progress import Progress

# Keys of extra_info the harness writes: a user's quality figure may not take one of them.
RESERVED = frozenset(schema.FIGURES) | {"device", "workload", "variant", "size", "quality", "throughput_unit", "calls"}
# ... except what a training learned, which a user's figure may be called as the suite's are.
LEARNED = frozenset(f.key for f in schema.JUDGED if f.key != "peak_memory_bytes")


@dataclass(frozen=True)
class Budget:
    """A benchmark's own round budget, where it is not the size's (None: the size's)."""

    min_rounds: int | None = None
    max_time_s: float | None = None


def _misuse(message: str) -> None:
    pytest.fail(message, pytrace=False)


def _check_count(name: str, value, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        _misuse(f"bench.run({name}={value!r}): {name} is a whole number of rounds, 1 or more")


def _check_seconds(name: str, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        _misuse(f"bench.run({name}={value!r}): {name} is a number of seconds above 0")


def _non_finite(value, depth: int = 0) -> bool:
    """Whether what a step returned holds a NaN or an infinity (tensors, numbers, and containers of them)."""
    if depth > 4:
        return False
    if isinstance(value, torch.Tensor):
        return bool((value.is_floating_point() or value.is_complex()) and not torch.isfinite(value).all())
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v, depth + 1) for v in value.values())
    return False


def variant_of(params: dict) -> str:
    """A result's variant from its test's parameters other than the device: ``bf16``, ``batch=64,precision=bf16``, ``default``."""
    if not params:
        return "default"
    if len(params) == 1:
        return str(next(iter(params.values())))
    return ",".join(f"{k}={v}" for k, v in params.items())


class Bench:
    def __init__(
        self,
        benchmark,
        size: Size,
        progress: Progress | None = None,
        within: float | None = None,
        *,
        test: str | None = None,
        params: dict | None = None,
        budget: Budget = Budget(),
        nodeid: str = "",
    ):
        self.benchmark = benchmark
        self.size = size
        self.progress = progress
        self.within = within  # --bench-median-within; None: the size's
        self.test = test  # the test function's name: a result's workload unless given
        self.params = params or {}  # the test's parameters other than its device: its variant unless given
        self.budget = budget  # pytest-benchmark's options and mark, where they change the size's
        self.nodeid = nodeid  # the test as a command line names it: its file's absolute path and its name
        self.device: BenchDevice | None = None  # where it ran, once it has
        self.passed = False  # set when its test has passed
        self._ran = False
        self._workload = False  # run_workload's: the suite's own step
        self._to_count: tuple | None = None  # (device, step, setup) whose work is counted once the test is done

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
        rounds: Rounds | int | None = None,
        min_rounds: int | None = None,
        max_time_s: float | None = None,
        workload: str | None = None,
        variant: str | None = None,
        check_finite: bool = True,
        ranks: bool = False,
    ) -> Any:
        """Time ``step`` on ``device``; returns the last timed call's result.

        ``step`` queues its work and returns; every timed interval ends when the device has
        finished it. ``setup`` runs, untimed, before every call. The rounds go on until the
        median is known, within the size's budget; ``rounds=N`` runs exactly N instead, and
        ``min_rounds``/``max_time_s`` change the budget (as pytest-benchmark's
        ``--benchmark-min-rounds``/``--benchmark-max-time`` and ``benchmark`` mark do).
        ``workload`` (default: the test function's name) and ``variant`` (default: the test's
        parameters other than the device) are what ``speedup`` and ``report`` set side by
        side across devices. A NaN or inf in what the step returns fails the benchmark
        (``check_finite=False`` times it anyway). A benchmark that drives DDP ranks says so
        (``ranks=True``); any other is skipped on a DDP device, where it would run in the
        parent process alone.
        """
        if self._ran:
            _misuse(f"bench.run was called twice in {self.test or 'this test'}: one benchmark per test (parametrize the test to time more steps)")
        if not isinstance(device, BenchDevice):
            _misuse(f"bench.run(device, step): device is devicebench's device fixture (or bench_device), not {type(device).__name__}")
        if not callable(step):
            _misuse(f"bench.run(device, step): step is a function of no arguments that queues the work, not {type(step).__name__}")
        rounds = self._rounds(rounds, min_rounds, max_time_s)
        if device.drives_ranks and not ranks:
            pytest.skip(devices.NO_RANKS)
        self._ran = True
        self.info.setdefault("workload", workload or self.test or "benchmark")
        self.info.setdefault("variant", variant or variant_of(self.params))
        self.info.update(device.describe())
        self.info["size"] = self.size.name
        self.info.setdefault("quality", {})
        params = self.benchmark.params
        if not isinstance(params, dict) or "device" not in params:
            # Every result names its device among its parameters, a host workload too, so that
            # pytest-benchmark's ``--group-by param:device`` finds it (a new dict: the test's own stays as pytest made it).
            self.benchmark.params = {**{k: v for k, v in (params or {}).items() if k != "bench_device"}, "device": device.id}
        self.info["precision"] = _precision.current()
        self.device = device
        if instructions.in_worker():  # counted again under Valgrind: the step's instructions, no timing
            self._to_count = (device, step, setup)
            if self._workload:  # a declared workload: nothing reads what its step returns here
                return None
            if setup is not None:
                setup()
            return step()
        loop = internals.BenchmarkLoop(self.benchmark)
        last = measure(loop, device, step, rounds=rounds, setup=setup, progress=self.progress)
        if not loop.disabled:
            self._to_count = (device, step, setup)
        if check_finite and _non_finite(last):
            _misuse(
                f"the step returned NaN or inf on {device.id}: a step that diverged is no benchmark "
                "(bench.run(..., check_finite=False) times it anyway)"
            )
        if self.info.get("peak_memory_bytes") is not None:
            self._declare("peak_memory_bytes", self.info["peak_memory_bytes"], "lower", "relative", "the timed calls' peak")
        return last

    def count_work(self, call: Callable[[], Any] | None = None, counted: str | None = None, not_counted: str | None = None) -> None:
        """The step's exact work (:mod:`devicebench.measure.counting`), from one more call after
        everything the benchmark reads: at the end of its test (``call``: a shorter stand-in of
        the step's work, which ``counted`` names; ``not_counted``: why there is nothing to count)."""
        if self._to_count is None:
            return
        device, step, setup = self._to_count
        self._to_count = None
        if device.drives_ranks or device.is_ddp:
            not_counted = not_counted or "DDP: the step's work runs in the ranks' processes"
        if not_counted:
            self.info["work_note"] = not_counted
            return
        if instructions.in_worker():
            instructions.count(self.nodeid, call or step, None if call else setup, device.synchronize, counted or "one call of the step")
            return
        try:
            work = counting.count(device, call or step, None if call else setup)
        except Exception as exc:  # a step that cannot run under the counters still timed what it timed
            self.info["work_note"] = f"not counted: the counted call raised {type(exc).__name__}: {str(exc)[:200]}"
            warnings.warn(f"devicebench: {self.test or 'a benchmark'}'s work was not counted: {type(exc).__name__}: {exc}", stacklevel=1)
            return
        notes = [n for n, applies in ((counting.COMPILED_NOTE, self.info.get("compile_mode") not in (None, "eager")), (counting.DP_NOTE, device.is_dp)) if applies]
        work["counted"] = counted or "one call of the step"
        if notes:
            work["note"] = "; ".join(notes)
        self.info["work"] = work

    def _rounds(self, rounds, min_rounds, max_time_s) -> Rounds:
        """The rounds of this benchmark: a fixed count, the given budget, or the size's."""
        _check_count("min_rounds", min_rounds)
        _check_seconds("max_time_s", max_time_s)
        if rounds is not None and not isinstance(rounds, Rounds):
            _check_count("rounds", rounds, allow_none=False)
            rounds = Rounds.fixed(int(rounds), warmup=self.size.rounds.warmup)
        if rounds is not None and rounds.within is None and (min_rounds is not None or max_time_s is not None):
            given = ", ".join(f"{k}={v!r}" for k, v in (("min_rounds", min_rounds), ("max_time_s", max_time_s)) if v is not None)
            _misuse(
                f"bench.run(rounds={rounds.min_rounds}, {given}): rounds=N runs exactly N rounds; "
                "min_rounds and max_time_s are for rounds that stop once the median is known: give one or the other"
            )
        if rounds is not None and rounds.within is None:
            return rounds
        chosen = rounds if rounds is not None else self.size.rounds
        min_rounds = min_rounds if min_rounds is not None else self.budget.min_rounds
        max_time_s = max_time_s if max_time_s is not None else self.budget.max_time_s
        if chosen.within is not None and (min_rounds is not None or max_time_s is not None):
            lowest = min_rounds if min_rounds is not None else chosen.min_rounds
            chosen = Rounds(
                warmup=chosen.warmup,
                min_rounds=lowest,
                max_rounds=max(chosen.max_rounds, lowest),
                max_time_s=max_time_s if max_time_s is not None else chosen.max_time_s,
                min_time_s=chosen.min_time_s,
                settle_rounds=chosen.settle_rounds,
                within=chosen.within,
            )
        if self.within is not None:
            chosen = chosen.aiming_within(self.within)
        return chosen

    def quality(self, name: str, value: float, *, higher_is_better: bool, rule: str = "relative", after: str | None = None) -> None:
        """Declare a figure of what the benchmark learned or used, for ``devicebench compare`` to judge.

        ``rule="relative"``: worse by more than the gate's threshold (a loss); ``"absolute"``:
        down by more than its accuracy drop (an accuracy). ``after`` is the work the figure
        was read after; by default, the calls the step got, so a figure read from a model that
        trained on every call is judged only against runs that made as many calls (give
        ``rounds=N``, or say what it is after: ``after="200 steps from the same start"``).
        A NaN or inf fails the benchmark.
        """
        if not isinstance(name, str) or not name.isidentifier() or name in RESERVED - LEARNED:
            _misuse(f"bench.quality({name!r}, ...): the name is a Python identifier of your own, not one of devicebench's keys")
        if rule not in _quality.RULES:
            _misuse(f"bench.quality(..., rule={rule!r}): rule is one of {', '.join(_quality.RULES)}")
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            _misuse(f"bench.quality({name!r}, {value!r}): the value is a number")
        if not math.isfinite(value):
            _misuse(f"{name} is {value}: a benchmark whose {name} is not finite diverged")
        if after is None:
            after = f"{self.info['calls']} calls" if "calls" in self.info else "its setup"
        self._declare(name, float(value), "higher" if higher_is_better else "lower", rule, after)

    def _declare(self, name: str, value: float, better: str, rule: str, after: str) -> None:
        self.info.setdefault("quality", {})[name] = _quality.Quality(name, value, better, rule, after).as_json()

    def compile(self, device: BenchDevice, fn: Any, mode: str | None = None) -> Any:
        """``torch.compile(fn)`` for this benchmark, its compile time kept apart; ``fn`` as it is in eager mode.

        ``mode`` defaults to the test's ``compile_mode`` parameter, so one test runs the same step
        eager and compiled: ``@pytest.mark.parametrize("compile_mode", ["eager", "default"])``.
        The compiled variant's speed-up over the eager one on the same device, and when its
        compile time pays off, are in ``devicebench speedup`` and the report. The compiler
        starts with a cold cache of this benchmark's own; the first call compiles (``compile_s``);
        a compile inside the timed rounds is flagged. Skipped, with the reason, where
        ``torch.compile`` cannot compile for ``device`` (no C++ compiler; no Triton or no C compiler for it).
        """
        from devicebench.measure import compiling

        if self._ran:
            _misuse("bench.compile comes before bench.run: the step bench.run times is the compiled one")
        if not isinstance(device, BenchDevice):
            _misuse(f"bench.compile(device, fn): device is devicebench's device fixture (or bench_device), not {type(device).__name__}")
        mode = mode if mode is not None else self.params.get("compile_mode", "default")
        if mode != compiling.EAGER and mode not in compiling.MODES:
            _misuse(f"bench.compile(mode={mode!r}): the mode is eager or one of torch.compile's: {', '.join(compiling.MODES)}")
        self.info["compile_mode"] = mode
        if mode == compiling.EAGER:
            return fn
        if device.drives_ranks:
            pytest.skip(devices.NO_RANKS)  # as bench.run would: the step would run in this process alone
        if device.is_dp or device.is_ddp:
            pytest.skip(COMPILE_NO_DP if device.is_dp else "torch.compile under DistributedDataParallel is not measured yet")
        reason = compiling.unavailable(device, mode)
        if reason:
            pytest.skip(reason)
        eager = variant_of({**self.params, "compile_mode": compiling.EAGER}) if "compile_mode" in self.params else None
        self._compiling(device, mode, eager)
        return compiling.wrap(fn, mode)

    def setup(self, device: BenchDevice, build: Callable[[], Any]) -> Any:
        """``build()``, timed to the end of its device work and recorded as ``setup_s`` (never a round)."""
        built, self.info["setup_s"] = timed_setup(device, build)
        return built

    def run_workload(self, workload: Workload, device: BenchDevice | None, variant_name: str, context: Context) -> None:
        """One declared workload's variant on ``device`` (None: a host workload, on the CPU)."""
        variant = workload.variant(variant_name)
        reason = devices.launch_skip_reason("cpu") if device is None else None
        reason = reason or workload.unsupported(device, variant)
        if reason:
            pytest.skip(reason)
        device = device or devices.open_device("cpu")
        size = workload.size(self.size.name)
        self.info.update(workload=workload.name, variant=variant.name, **workload.size_fields(self.size.name))
        # What a reader sets it against, recorded with it: a later declaration does not change an old run.
        self.info.update(cpu_reference=variant.cpu_reference, ceiling=variant.ceiling)
        if variant.compile_mode is not None:
            self._compiling(device, variant.compile_mode, variant.eager_reference)
            if variant.graph_reference:
                self.info["graph_reference"] = variant.graph_reference
        if self.benchmark.group is None:
            self.benchmark.group = workload.name  # pytest-benchmark's table: one per workload, in a unit that fits it
        # The settings are in force around the build too: a CUDA graph bakes in those of its capture.
        with _precision.settings(variant.precision):
            step = self.setup(device, lambda: workload.build(device, variant, size, context))
            try:
                self.info.update(step.info)
                # A step that checks what it learned says how it diverged in its own words.
                self._workload = True
                last = self.run(device, step.call, setup=step.setup, rounds=step.rounds, ranks=True, check_finite=step.finish is None)
                if step.work is not None:
                    self.throughput(step.unit or workload.unit, step.work)
                if step.finish is not None and not instructions.in_worker():
                    timed = Timed(last, self.round_times(), self.call_times(), self.median_s, self.info["setup_s"])
                    learned = step.finish(timed)
                    self.info.update(learned)
                    self._declare_learned(learned, step.quality_after)
                self.count_work(step.count, step.counted, step.not_counted)
            finally:
                if step.close is not None:
                    step.close()

    def _compiling(self, device: BenchDevice, mode: str, eager_reference: str | None) -> None:
        """A compiled benchmark: the compiler started, a cold cache of its own, and what its speed-up is read against."""
        from devicebench.measure import compiling

        startup_s = compiling.start_up(device)
        self.info.update(compile_mode=mode, eager_reference=eager_reference, compile_cache=compiling.fresh_cache(), compiler_startup_s=startup_s)

    def _declare_learned(self, learned: dict, after: str | None) -> None:
        """The suite's workloads report what they learned under the schema's keys; each is declared as the schema judges it."""
        for figure in schema.JUDGED:
            value = learned.get(figure.key)
            if figure.key == "peak_memory_bytes" or isinstance(value, bool) or not isinstance(value, numbers.Real):
                continue
            if figure.unless and learned.get(figure.unless) is not None:
                continue
            rule = "absolute" if figure.rule == "accuracy" else "relative"
            self._declare(figure.key, float(value), figure.better, rule, after or f"{self.info.get('calls')} calls")

    @property
    def median_s(self) -> float | None:
        timed = self.round_times()
        return statistics.median(timed) if timed else None

    def round_times(self) -> list[float]:
        """Every timed round's seconds per call, in order (empty when timing was disabled)."""
        return list(internals.BenchmarkLoop(self.benchmark).round_seconds())

    def call_times(self) -> list[float]:
        """Seconds of every call in order: the cold one, the warm-up ones, the timed rounds."""
        timed = self.round_times()
        if not timed:
            return []
        return [self.info["cold_start_s"], *self.info["warmup_s"], *timed]

    def throughput(self, unit: str, work_per_call: float) -> None:
        """Record ``unit`` = work per call / median time: ``tflops``, ``gb_per_s``, ``steps_per_s``,
        ``samples_per_s``, or things of your own per second (``tokens_per_s``, shown as tokens/s)."""
        if not self._ran:
            _misuse(f"bench.throughput({unit!r}, ...) comes after bench.run(...): it divides the work of one call by the median time")
        if not schema.is_throughput_unit(unit):
            _misuse(
                f"bench.throughput({unit!r}, ...): the unit is one of {', '.join(schema.THROUGHPUT_UNITS)}, "
                "or one of your own things per second, in lower case: tokens_per_s, images_per_s"
            )
        if isinstance(work_per_call, bool) or not isinstance(work_per_call, numbers.Real) or not 0 < work_per_call < math.inf:
            _misuse(f"bench.throughput({unit!r}, {work_per_call!r}): the work of one call is a number above 0")
        median = self.median_s
        if median:
            self.info[unit] = work_per_call / median
            self.info["throughput_unit"] = unit
