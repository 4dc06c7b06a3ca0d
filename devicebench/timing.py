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
2. ``warmup`` calls, not counted; the last one estimates the time per call;
3. timed rounds through pytest-benchmark's ``pedantic`` (so its statistics, table and JSON
   storage apply), as many as fill the size's time budget. On CUDA, events recorded around
   the same calls give an independent median (``cuda_event_median_s``) to check against.

A round ends with a sync, and a sync plus the timer cost a few microseconds of their own:
on an H200 a synchronized round of a 227 us tf32 matmul read 241 us (6% more than its CUDA
events). A step faster than :data:`MIN_ROUND_S` (and without a setup) is therefore called
``iterations`` times back to back per round, synchronized once after the last call, and
pytest-benchmark divides the round by ``iterations``, as it does for its own calibrated
loops. ``iterations`` is recorded.

pytest-benchmark calls the step once more after looped rounds ("if it has been looped then
we don't have the result, we need to do 1 extra run"), and again under ``--benchmark-cprofile``.
Such calls come after the last timed round: they are synchronized, never timed or recorded,
and the CUDA events cover the timed calls only.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from .config import Rounds
from .devices import BenchDevice
from .progress import Progress
from .stats import quartiles

# Rounds shorter than this are lengthened by calling the step several times per round.
MIN_ROUND_S = 2e-3
MAX_ITERATIONS = 1000
# Empty synchronized rounds after the timed ones, to measure what a sync costs on this device.
SYNC_PROBE_ROUNDS = 25


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

    Records ``cold_start_s``, ``warmup_rounds``, ``warmup_s`` (not counted) and (on CUDA) ``cuda_event_*`` in the
    benchmark's ``extra_info``. With benchmarks disabled (``--benchmark-disable``, or under
    xdist) the step runs once, synchronized, so the benchmark still works as a test.
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
        return call_synced()[1]

    info = benchmark.extra_info
    # Under DDP the work runs in the ranks' processes: events and memory counters here would
    # watch an idle GPU. The ranks report their own (see devicebench.distributed).
    on_this_process_gpu = device.is_accelerator and not device.drives_ranks
    if on_this_process_gpu:
        device.reset_peak_memory()

    cold_s, _ = call_synced()
    info["cold_start_s"] = cold_s
    estimate_s = cold_s
    warmup_s = []
    for i in range(rounds.warmup):
        estimate_s, _ = call_synced()
        warmup_s.append(estimate_s)
        if progress:
            progress.update("warm-up", i + 1, rounds.warmup)
    iterations = 1
    if setup is None and estimate_s < MIN_ROUND_S:
        iterations = min(MAX_ITERATIONS, math.ceil(MIN_ROUND_S / max(estimate_s, 1e-9)))
    n_rounds, iterations = device.agree((rounds.rounds_for(estimate_s * iterations), iterations))  # under torchrun: rank 0's
    info["warmup_rounds"] = rounds.warmup
    info["warmup_s"] = warmup_s
    info["iterations"] = iterations

    events: list[tuple[Any, Any]] = []
    if on_this_process_gpu:
        events = [(device.timing_event(), device.timing_event()) for _ in range(n_rounds)]
    done = calls = 0
    result = None

    def before_round() -> None:
        prepare()
        if progress:
            progress.update("round", done, n_rounds)

    def timed() -> Any:
        """One call; the first of a round records the start event, the last the end event and syncs."""
        nonlocal done, calls, result
        if done == n_rounds:  # a call pytest-benchmark makes after the timed rounds: not part of them
            extra = step()
            device.synchronize()
            return extra
        first, last = calls % iterations == 0, calls % iterations == iterations - 1
        calls += 1
        if events and first:
            events[done][0].record()
        result = step()
        if last:
            if events:
                events[done][1].record()
            device.synchronize()
            done += 1
        return result

    if iterations == 1:
        benchmark.pedantic(timed, setup=before_round, rounds=n_rounds, warmup_rounds=0, iterations=1)
    else:  # pytest-benchmark takes no setup with iterations; a round this short needs no progress line
        benchmark.pedantic(timed, rounds=n_rounds, warmup_rounds=0, iterations=iterations)

    if events:
        event_s = [start.elapsed_time(end) / 1e3 / iterations for start, end in events]
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
