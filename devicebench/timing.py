"""GPU-correct timing, in one place.

A CUDA kernel launch returns as soon as the work is queued, so a timer stopped after
``torch.matmul`` on a GPU measures the launch, not the multiplication (47x too fast for the
tutorial's matmul). Here every timed interval ends with :meth:`BenchDevice.synchronize`,
which waits for all queued work on every device the benchmark used. Nothing else in the
suite synchronizes for timing.

A benchmark hands :func:`measure` a ``step`` that queues its work and returns, and an
optional ``setup`` that is run, untimed, before every call. The sequence is:

1. one cold call (CUDA context, library handles, autotuning), timed and recorded apart as
   ``cold_start_s``, never mixed into the steady figures;
2. ``warmup`` calls, not counted; the fastest call so far estimates the time per call (a call
   the machine interrupted does not turn the loop off);
3. timed rounds through pytest-benchmark's ``pedantic`` (so its statistics, table and JSON
   storage apply) until the median is known (:class:`devicebench.config.Rounds`): its
   distribution-free 95% interval lies within +-``precision`` of it (after ``settle_rounds``
   rounds and ``min_time_s``), or the time limit or the round limit is reached (then the
   result is "noisy"). Why it stopped, the interval and the precision reached are recorded.
   On CUDA, events recorded around the same calls give an independent median
   (``cuda_event_median_s``) to check against, and the GPU's own sensors are read
   (:mod:`devicebench.sensors`: clocks, throttling, power, energy).

A round ends with a sync, and a sync plus the timer cost a few microseconds of their own:
on an H200 a synchronized round of a 227 us tf32 matmul read 241 us (6% more than its CUDA
events). A step faster than :data:`MIN_ROUND_S` (and without a setup) is therefore called
``iterations`` times back to back per round, synchronized once after the last call, and
pytest-benchmark divides the round by ``iterations``, as it does for its own calibrated
loops. ``iterations`` is recorded.

pytest-benchmark calls the step once more after looped rounds ("if it has been looped then
we don't have the result, we need to do 1 extra run"), and again under ``--benchmark-cprofile``.
Such calls come after the last timed round: they are synchronized, never timed or recorded,
and the CUDA events cover the timed calls only. Rounds that are enough end pytest-benchmark's
loop from inside (:class:`_Enough`, raised before the next round's work), so its statistics
hold exactly the rounds that were timed.
"""

from __future__ import annotations

import bisect
import math
import time
from typing import Any, Callable

from . import stats
from .config import Rounds
from .devices import BenchDevice
from .progress import Progress
from .stats import quartiles

# Rounds shorter than this are lengthened by calling the step several times per round.
MIN_ROUND_S = 2e-3
MAX_ITERATIONS = 1000
# Empty synchronized rounds after the timed ones, to measure what a sync costs on this device.
SYNC_PROBE_ROUNDS = 25
CONVERGED, TIME_LIMIT, ROUND_LIMIT = "converged", "time limit", "round limit"


class _Enough(Exception):
    """Raised into pytest-benchmark's round loop, before a round's work, once the rounds are enough."""


def precision_of(ordered: list[float]) -> tuple[float | None, float | None, float | None]:
    """(low, high, relative half-width) of the median's distribution-free 95% interval, from
    the rounds in ascending order; Nones with too few rounds."""
    ranks = stats.median_ci_ranks(len(ordered))
    if ranks is None:
        return None, None, None
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    low, high = ordered[ranks[0]], ordered[ranks[1]]
    return low, high, max(median - low, high - median) / median


def measure(
    benchmark,
    device: BenchDevice,
    step: Callable[[], Any],
    *,
    rounds: Rounds,
    setup: Callable[[], None] | None = None,
    progress: Progress | None = None,
) -> Any:
    """Time ``step()`` on ``device``; returns what the last timed call returned.

    Records ``cold_start_s``, ``warmup_rounds``, ``warmup_s`` (not counted), ``iterations``,
    ``stop_reason``, ``median_ci_low_s``/``median_ci_high_s``, ``median_precision`` and (on a
    GPU) ``cuda_event_*`` and the sensors' figures in the benchmark's ``extra_info``. With
    benchmarks disabled (``--benchmark-disable``, or under xdist) the step runs once,
    synchronized, so the benchmark still works as a test.
    """

    def prepare() -> None:
        if setup is not None:
            setup()
        # Setup may queue device work of its own; it must not spill into the timed call.
        device.synchronize()

    def call_synced() -> tuple[float, Any]:
        prepare()
        start = time.perf_counter()
        result = step()
        device.synchronize()
        return time.perf_counter() - start, result

    if getattr(benchmark, "disabled", False):
        benchmark.extra_info["calls"] = 1
        return call_synced()[1]

    info = benchmark.extra_info
    # Under DDP the work runs in the ranks' processes: events, sensors and memory counters
    # here would watch an idle GPU. The ranks report their own (see devicebench.distributed).
    on_this_process_gpu = device.is_accelerator and not device.drives_ranks
    if on_this_process_gpu:
        device.reset_peak_memory()

    cold_s, _ = call_synced()
    info["cold_start_s"] = cold_s
    estimate_s = cold_s
    warmup_s = []
    for i in range(rounds.warmup):
        warm_s, _ = call_synced()
        warmup_s.append(warm_s)
        estimate_s = min(estimate_s, warm_s)
        if progress:
            progress.update("warm-up", i + 1, rounds.warmup)
    iterations = 1
    if setup is None and estimate_s < MIN_ROUND_S:
        iterations = min(MAX_ITERATIONS, math.ceil(MIN_ROUND_S / max(estimate_s, 1e-9)))
    iterations = device.agree(iterations)  # under torchrun: rank 0's
    info.update(warmup_rounds=rounds.warmup, warmup_s=warmup_s, iterations=iterations)

    events: list[tuple[Any, Any]] = []
    use_events = on_this_process_gpu and device.supports("events")
    monitor = device.monitor() if not device.drives_ranks else None
    done = calls = extra_calls = 0
    result = None
    began: float | None = None
    stop_reason = ROUND_LIMIT
    # The rounds so far in ascending order, kept as they come (an insertion, microseconds),
    # so that the median's interval is two look-ups after every round.
    ordered: list[float] = []

    def enough() -> bool:
        """Whether the rounds so far are enough; only rank 0's answer counts under torchrun."""
        nonlocal stop_reason
        if done < rounds.min_rounds:
            return False
        elapsed = time.perf_counter() - began
        reason = None
        if done >= rounds.max_rounds:
            reason = ROUND_LIMIT
        elif elapsed >= rounds.max_time_s:
            reason = TIME_LIMIT
        elif rounds.precision is not None and done >= rounds.settle_rounds and elapsed >= rounds.min_time_s:
            _, _, precision = precision_of(ordered)
            if precision is not None and precision <= rounds.precision:
                reason = CONVERGED
        if rounds.precision is not None:  # a fixed count needs no agreement: every rank counts alike
            reason = device.agree(reason)
        if reason:
            stop_reason = reason
        return reason is not None

    def start_round() -> None:
        """Before a round's work: what the last round left, and whether to go on."""
        nonlocal began
        if began is None:
            began = time.perf_counter()
            if monitor:
                monitor.start()
        else:
            bisect.insort(ordered, benchmark.stats.stats.data[-1])
            if monitor:
                monitor.round_done()  # reads the sensors at most every 100 ms, whatever the rounds
        if enough():
            raise _Enough
        if progress and done:
            progress.update("round", done, rounds.max_rounds if rounds.precision is None else None, precision_of(ordered)[2])
        if use_events:
            events.append((device.timing_event(), device.timing_event()))

    def before_round() -> None:
        start_round()
        prepare()

    def timed() -> Any:
        """One call; the first of a round records the start event, the last the end event and syncs."""
        nonlocal done, calls, result, extra_calls
        if done >= rounds.max_rounds:  # a call pytest-benchmark makes after the timed rounds: not part of them
            extra_calls += 1
            extra = step()
            device.synchronize()
            return extra
        first, last = calls % iterations == 0, calls % iterations == iterations - 1
        if first and iterations > 1:
            start_round()  # pytest-benchmark takes no setup with iterations: the round begins here
        calls += 1
        if use_events and first:
            events[done][0].record()
        result = step()
        if last:
            if use_events:
                events[done][1].record()
            device.synchronize()
            done += 1
        return result

    try:
        if iterations == 1:
            benchmark.pedantic(timed, setup=before_round, rounds=rounds.max_rounds, warmup_rounds=0, iterations=1)
        else:
            benchmark.pedantic(timed, rounds=rounds.max_rounds, warmup_rounds=0, iterations=iterations)
    except _Enough:
        benchmark.has_error = False  # pytest-benchmark marks any exception; this one only ends the rounds
    if monitor:
        monitor.round_done()
        timed_s = sum(benchmark.stats.stats.data) * iterations if benchmark.stats else None  # per call, as stored
        info.update(monitor.stop(rounds=done, calls_per_round=iterations, timed_s=timed_s))

    low, high, precision = precision_of(sorted(benchmark.stats.stats.data))
    info.update(
        stop_reason=stop_reason,
        median_ci_low_s=low,
        median_ci_high_s=high,
        median_precision=precision,
        target_precision=rounds.precision,
        timed_rounds_s=time.perf_counter() - began if began is not None else 0.0,
        # Every call the step got, timed or not: what a figure read from its state after timing is after.
        calls=1 + rounds.warmup + calls + extra_calls,
    )
    if events:
        event_s = [start.elapsed_time(end) / 1e3 / iterations for start, end in events[:done]]
        q1, median, q3 = quartiles(event_s)
        info.update(cuda_event_median_s=median, cuda_event_q1_s=q1, cuda_event_q3_s=q3)
        info["sync_overhead_max_s"] = max(sync_overheads(device))
    # None on the CPU: torch keeps no per-device peak there, and a process-wide RSS would mislead.
    info["peak_memory_bytes"] = device.peak_memory_bytes() if on_this_process_gpu else None
    return result


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
