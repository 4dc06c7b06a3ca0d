"""GPU-correct timing, in one place.

A CUDA kernel launch returns as soon as the work is queued, so a timer stopped after
``torch.matmul`` on a GPU measures the launch, not the multiplication (47x too fast for the
tutorial's matmul). Here every timed interval ends with :meth:`BenchDevice.synchronize`,
which waits for all queued work on every device the benchmark used. Nothing else in the
suite synchronizes for timing.

A benchmark hands :func:`measure` a ``step`` that queues its work and returns, and an
optional ``setup`` that is run, untimed, before every call. The sequence is:

1. one cold call (CUDA context, library handles, autotuning), timed and recorded apart as
   ``cold_start_s``, never mixed into the steady figures; a compiled step compiles here, and
   the compiler's own seconds in it are recorded apart as ``compile_s``
   (:mod:`devicebench.measure.compiling`; a compile inside the timed rounds is counted as
   ``recompiles_in_rounds``, since those rounds then timed the compiler);
2. ``warmup`` calls, not counted; the fastest call so far estimates the time per call (a call
   the machine interrupted does not turn the loop off);
3. timed rounds through pytest-benchmark's ``pedantic`` (so its statistics, table and JSON
   storage apply) until the median is known (:class:`devicebench.measure.config.Rounds`): its
   distribution-free 95% interval lies within +-``within`` of it (after ``settle_rounds``
   rounds and ``min_time_s``), or the time limit or the round limit is reached (then the
   result is "noisy"). Why it stopped and the interval reached are recorded.
   On CUDA, events recorded around the same calls give an independent median
   (``cuda_event_median_s``) to check against, and the GPU's own sensors are read
   (:mod:`devicebench.measure.sensors`: clocks, throttling, power, energy).

A round ends with a sync, and a sync plus the timer cost a few microseconds of their own:
on an H200 a synchronized round of a 227 us tf32 matmul read 241 us (6% more than its CUDA
events). A step faster than :data:`MIN_ROUND_S` (and without a setup) is therefore called
``iterations`` times back to back per round, synchronized once after the last call, and the
round is stored per call (divided by ``iterations``, as pytest-benchmark does for its own
loops). ``iterations`` is recorded.

Only the round is timed. The work between rounds (the stop rule, the sensors' reads, progress
lines, the next round's CUDA events, under torchrun the ranks' agreement) runs in
pytest-benchmark's untimed ``setup`` before each round, looped or not: the timing drives a
:class:`Loop`, which devicebench's pytest side makes of pytest-benchmark's fixture
(:class:`devicebench.harness.pytest_benchmark_internals.BenchmarkLoop`). Rounds that are
enough end pytest-benchmark's loop from that setup, before the next round's work, so its
statistics hold exactly the rounds that were timed; ``--benchmark-cprofile`` then profiles one
more round, untimed and unrecorded.
"""

from __future__ import annotations

import bisect
import math
import time
from typing import Any, Callable, Protocol

from devicebench.reading import stats
from devicebench.reading.stats import quartiles

from . import compiling
from .config import Rounds
from .devices import BenchDevice

# Rounds shorter than this are lengthened by calling the step several times per round.
MIN_ROUND_S = 2e-3
MAX_ITERATIONS = 1000
# Empty synchronized rounds after the timed ones, to measure what a sync costs on this device.
SYNC_PROBE_ROUNDS = 25
CONVERGED, TIME_LIMIT, ROUND_LIMIT = "converged", "time limit", "round limit"


class StopRounds(Exception):
    """Raised by a round's untimed setup, before its work, once the rounds are enough."""


class Progress(Protocol):
    """Progress lines for a long benchmark (devicebench's pytest side writes them between rounds)."""

    def update(self, phase: str, done: int, total: int | None = None, half_width: float | None = None) -> None: ...


class Loop(Protocol):
    """pytest-benchmark's fixture as the timing sees it (devicebench's pytest side adapts it):
    where a result's figures go, whether timing is off, and its loop of timed rounds."""

    info: dict  # the benchmark's extra_info
    disabled: bool  # --benchmark-disable, or under xdist: the step runs once, untimed

    def run(self, round_call: Callable[[], Any], *, before_round: Callable[[], None], rounds: int, calls_per_round: int) -> None:
        """Time ``round_call`` until ``before_round`` raises :class:`StopRounds` or ``rounds`` are done;
        only ``round_call`` is timed, and each round is stored divided by ``calls_per_round``."""

    def round_seconds(self) -> list[float]:
        """The timed rounds so far, per call (read, never changed)."""


def interval_of(ordered: list[float]) -> tuple[float | None, float | None, float | None]:
    """(low, high, relative half-width) of the median's distribution-free 95% interval, from
    the rounds in ascending order; Nones with too few rounds."""
    ranks = stats.median_ci_ranks(len(ordered))
    if ranks is None:
        return None, None, None
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    low, high = ordered[ranks[0]], ordered[ranks[1]]
    return low, high, max(median - low, high - median) / median


class StopRule:
    """When a benchmark's rounds are enough (NVBench's ``stopping_criterion``, for :class:`Rounds`).

    Never before ``min_rounds``; then at ``max_rounds`` ("round limit") or ``max_time_s``
    ("time limit"), or once the median's 95% interval lies within +-``within`` of it after
    ``settle_rounds`` rounds and ``min_time_s`` ("converged"). The rounds so far are kept in
    ascending order as they come (an insertion, microseconds), so the interval is two look-ups.
    Under torchrun only rank 0's answer counts (``device.agree``).
    """

    def __init__(self, rounds: Rounds, device: BenchDevice):
        self.rounds = rounds
        self.device = device
        self.ordered: list[float] = []
        self.reason = ROUND_LIMIT

    def add(self, seconds: float) -> None:
        bisect.insort(self.ordered, seconds)

    @property
    def half_width(self) -> float | None:
        """The median's interval so far: its half-width over the median."""
        return interval_of(self.ordered)[2]

    def is_finished(self, done: int, elapsed_s: float) -> bool:
        rounds = self.rounds
        if done < rounds.min_rounds:
            return False
        reason = None
        if done >= rounds.max_rounds:
            reason = ROUND_LIMIT
        elif elapsed_s >= rounds.max_time_s:
            reason = TIME_LIMIT
        elif rounds.within is not None and done >= rounds.settle_rounds and elapsed_s >= rounds.min_time_s:
            if self.half_width is not None and self.half_width <= rounds.within:
                reason = CONVERGED
        if rounds.within is not None:  # a fixed count needs no agreement: every rank counts alike
            reason = self.device.agree(reason)
        if reason:
            self.reason = reason
        return reason is not None


class Measurement:
    """One benchmark's timing, in the phases the module's docstring lists (as NVBench's
    ``measure_cold`` and pyperf's ``WorkerTask``): :meth:`cold_call`, :meth:`warm_up`,
    :meth:`calibrate_loop`, :meth:`time_rounds` until the :class:`StopRule` says enough,
    then :meth:`record`. :meth:`run` does them in order and returns what the last timed call
    returned; state lives in attributes, each set by the phase that owns it."""

    def __init__(self, loop: Loop, device: BenchDevice, step: Callable[[], Any], *, rounds: Rounds, setup=None, progress: Progress | None = None):
        self.loop = loop
        self.device = device
        self.step = step
        self.rounds = rounds
        self.setup = setup
        self.progress = progress
        self.info = loop.info
        # Under DDP the work runs in the ranks' processes: events, sensors and memory counters
        # here would watch an idle GPU. The ranks report their own (see devicebench.measure.distributed).
        self.on_this_process_gpu = device.is_accelerator and not device.drives_ranks
        self.use_events = self.on_this_process_gpu and device.supports("events")
        self.stop = StopRule(rounds, device)
        self.estimate_s = math.inf  # the fastest call so far
        self.iterations = 1  # calls per round
        self.events: list[tuple[Any, Any]] = []  # (start, end) per timed round
        self.monitor = None
        self.began: float | None = None  # when the first timed round began
        self.timing = True  # until the stop rule ends the timed rounds
        self.done = 0  # timed rounds finished
        self.calls = 0  # calls in timed rounds
        self.extra_calls = 0  # calls pytest-benchmark's profiler made after the timed rounds
        self.result = None  # what the last timed call returned
        # Process CPU seconds per call of each timed round, read between rounds (never inside the timer).
        self.cpu_rounds: list[float] = []
        self._cpu_mark: float | None = None
        # A compiled step (``compile_mode`` recorded by its benchmark): what torch's compiler did in each phase.
        self.compiled = self.info.get("compile_mode") not in (None, compiling.EAGER)
        self.setup_compiles = 0  # compiles in the untimed setups between timed rounds

    def run(self) -> Any:
        if self.loop.disabled:
            self.info["calls"] = 1
            return self._call_synced()[1]
        if self.on_this_process_gpu:
            self.device.reset_peak_memory()
        whole = compiling.CompileWatch() if self.compiled else None
        self.cold_call()
        if whole is not None:
            self.info["compile_s"] = whole.since().seconds  # the first call's compile, apart from the rest of it
        self.warm_up()
        self.calibrate_loop()
        rounds = compiling.CompileWatch() if self.compiled else None
        self.setup_compiles = 0
        self.time_rounds()
        self.record()
        if whole is not None:
            self.record_compiles(whole.since(), rounds.since())
        return self.result

    # --- untimed rounds ---------------------------------------------------------------------

    def _prepare(self) -> None:
        if self.setup is not None:
            if self.compiled:
                watch = compiling.CompileWatch()
                self.setup()
                self.setup_compiles += watch.since().compiles or 0
            else:
                self.setup()
        # Setup may queue device work of its own; it must not spill into the timed call.
        self.device.synchronize()

    def _call_synced(self) -> tuple[float, Any]:
        self._prepare()
        start = time.perf_counter()
        result = self.step()
        self.device.synchronize()
        return time.perf_counter() - start, result

    def cold_call(self) -> None:
        """CUDA context, library handles, autotuning: timed, recorded apart, never a round."""
        self.info["cold_start_s"], _ = self._call_synced()
        self.estimate_s = self.info["cold_start_s"]

    def warm_up(self) -> None:
        warmup_s = []
        for i in range(self.rounds.warmup):
            seconds, _ = self._call_synced()
            warmup_s.append(seconds)
            self.estimate_s = min(self.estimate_s, seconds)  # a call the machine interrupted does not decide
            if self.progress:
                self.progress.update("warm-up", i + 1, self.rounds.warmup)
        self.info.update(warmup_rounds=self.rounds.warmup, warmup_s=warmup_s)

    def calibrate_loop(self) -> None:
        """A step shorter than :data:`MIN_ROUND_S` (without a setup) is called several times a round."""
        if self.setup is None and self.estimate_s < MIN_ROUND_S:
            self.iterations = min(MAX_ITERATIONS, math.ceil(MIN_ROUND_S / max(self.estimate_s, 1e-9)))
        self.iterations = self.device.agree(self.iterations)  # under torchrun: rank 0's
        self.info["iterations"] = self.iterations

    # --- the timed rounds, inside pytest-benchmark's loop ---------------------------------------

    def time_rounds(self) -> None:
        self.monitor = self.device.monitor() if not self.device.drives_ranks else None
        self.loop.run(self._timed_round, before_round=self._before_round, rounds=self.rounds.max_rounds, calls_per_round=self.iterations)
        self.timing = False

    def _before_round(self) -> None:
        """Untimed, before a round's work: what the last round left, whether to go on, the round's setup."""
        if not self.timing:  # pytest-benchmark's profiler, after the timed rounds
            self._prepare()
            return
        if self.began is None:
            self.began = time.perf_counter()
            if self.monitor:
                self.monitor.start()
        else:
            self._cpu_round_done()
            self.stop.add(self.loop.round_seconds()[-1])
            if self.monitor:
                self.monitor.round_done()  # reads the sensors at most every 100 ms, whatever the rounds
        if self.stop.is_finished(self.done, time.perf_counter() - self.began):
            self.timing = False
            raise StopRounds
        if self.progress and self.done:
            total = self.rounds.max_rounds if self.rounds.within is None else None
            self.progress.update("round", self.done, total, self.stop.half_width)
        if self.use_events:
            self.events.append((self.device.timing_event(), self.device.timing_event()))
        self._prepare()
        self._cpu_mark = time.process_time()

    def _cpu_round_done(self) -> None:
        if self._cpu_mark is not None and len(self.cpu_rounds) < self.done:
            self.cpu_rounds.append((time.process_time() - self._cpu_mark) / self.iterations)
            self._cpu_mark = None

    def _timed_round(self) -> Any:
        """One round, the only thing pytest-benchmark times: ``iterations`` calls between the
        round's events, then the sync that waits for their work."""
        step, iterations = self.step, self.iterations
        if not self.timing:  # a call pytest-benchmark's profiler makes after the timed rounds: not one of them
            self.extra_calls += iterations
            for _ in range(iterations):
                step()
            self.device.synchronize()
            return None
        events = self.events[self.done] if self.use_events else None
        if events:
            events[0].record()
        for _ in range(iterations):
            result = step()
        if events:
            events[1].record()
        self.device.synchronize()
        self.calls += iterations
        self.done += 1
        self.result = result
        return result

    # --- afterwards ----------------------------------------------------------------------------

    def record(self) -> None:
        """Why the rounds stopped, how well the median is known, the sensors, the events, the memory."""
        self._cpu_round_done()  # the last round, where the round limit (not the stop rule) ended them
        info, timed = self.info, self.loop.round_seconds()
        if self.cpu_rounds:
            # Every thread's CPU seconds (a spinning OpenMP thread's too), beside the wall clock.
            info["cpu_median_s"] = quartiles(self.cpu_rounds)[1]
        if self.monitor:
            self.monitor.round_done()
            timed_s = sum(timed) * self.iterations if timed else None  # per call, as stored
            info.update(self.monitor.stop(rounds=self.done, calls_per_round=self.iterations, timed_s=timed_s))
        low, high, half_width = interval_of(sorted(timed))
        info.update(
            stop_reason=self.stop.reason,
            median_ci_low_s=low,
            median_ci_high_s=high,
            median_precision=half_width,  # stored under its old name
            target_precision=self.rounds.within,  # stored under its old name
            timed_rounds_s=time.perf_counter() - self.began if self.began is not None else 0.0,
            # Every call the step got, timed or not: what a figure read from its state after timing is after.
            calls=1 + self.rounds.warmup + self.calls + self.extra_calls,
        )
        if self.events:
            event_s = [start.elapsed_time(end) / 1e3 / self.iterations for start, end in self.events[: self.done]]
            q1, median, q3 = quartiles(event_s)
            info.update(cuda_event_median_s=median, cuda_event_q1_s=q1, cuda_event_q3_s=q3)
            info["sync_overhead_max_s"] = max(sync_overheads(self.device))
        # None on the CPU: torch keeps no per-device peak there, and a process-wide RSS would mislead.
        info["peak_memory_bytes"] = self.device.peak_memory_bytes() if self.on_this_process_gpu else None

    def record_compiles(self, whole: compiling.Compiled, rounds: compiling.Compiled) -> None:
        """What the compiler did over the benchmark, and whether it compiled inside the timed rounds
        (then the rounds timed the compiler: ``show`` and ``compare`` say so)."""
        in_rounds = None if rounds.compiles is None else max(0, rounds.compiles - self.setup_compiles)
        self.info.update(
            compile_total_s=whole.seconds,
            compile_graphs=whole.graphs,
            compile_graph_breaks=whole.graph_breaks,
            compile_recompiles=whole.recompiles,
            recompiles_in_rounds=in_rounds,
        )


def measure(
    loop: Loop,
    device: BenchDevice,
    step: Callable[[], Any],
    *,
    rounds: Rounds,
    setup: Callable[[], None] | None = None,
    progress: Progress | None = None,
) -> Any:
    """Time ``step()`` on ``device``; returns what the last timed call returned.

    Records ``cold_start_s``, ``warmup_rounds``, ``warmup_s`` (not counted), ``iterations``,
    ``stop_reason``, ``median_ci_low_s``/``median_ci_high_s``, ``median_precision``, ``calls``
    and (on a GPU) ``cuda_event_*`` and the sensors' figures in the benchmark's ``extra_info``.
    With benchmarks disabled (``--benchmark-disable``, or under xdist) the step runs once,
    synchronized, so the benchmark still works as a test.
    """
    return Measurement(loop, device, step, rounds=rounds, setup=setup, progress=progress).run()


def sync_overheads(device: BenchDevice, rounds: int = SYNC_PROBE_ROUNDS) -> list[float]:
    """What a synchronized round costs beyond its device work, measured on empty rounds.

    A round's wall time exceeds its events by launching the first kernel, waking from the
    sync and reading the timer (13-20 us on an H200); ``check-timing`` allows that much.
    """
    gaps = []
    for _ in range(rounds):
        start, end = device.timing_event(), device.timing_event()
        begin = time.perf_counter()
        start.record()
        end.record()
        device.synchronize()
        gaps.append(max(0.0, time.perf_counter() - begin - start.elapsed_time(end) / 1e3))
    return gaps


def timed_setup(device: BenchDevice, build: Callable[[], Any]) -> tuple[Any, float]:
    """``build()`` and the seconds it took until its device work finished (model, data on the
    device, a CUDA graph's capture): a benchmark's setup, outside pytest-benchmark's rounds."""
    start = time.perf_counter()
    built = build()
    device.synchronize()
    return built, time.perf_counter() - start
