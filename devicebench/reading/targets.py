"""Checks of one stored GPU run: its medians against CUDA events (``devicebench check-timing``)
and the suite's own speed targets (``devicebench check-targets``).

Each target compares two figures of the same run. A target whose figures are missing (the
benchmark failed, was skipped or never ran) cannot be computed, and that is a failure too:
a check that silently drops what it cannot see would pass a broken GPU run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .runs import Result, Run, as_run
from .units import format_seconds

FP32_MATMUL_EFFICIENCY = 0.75  # of the same GPU's fp32 matmul ceiling
LINREG_GRAPH_OVER_EAGER = 4.0
CNN_GRAPH_OVER_RESIDENT = 3.0
GPU_CONVERGED = 0.90  # of the GPU medians whose rounds stop when the median is known, converged


@dataclass(frozen=True)
class Outcome:
    target: str
    passed: bool
    detail: str  # the figures, or what is missing


@dataclass(frozen=True)
class _Target:
    name: str
    needs: tuple[str, ...]  # benchmark names
    judge: Callable[[dict[str, Result]], tuple[bool, str]]


def _matmul(b: dict[str, Result]) -> tuple[bool, str]:
    achieved, ceiling = b["test_matmul[cuda:0-fp32]"].throughput, b["test_ceiling[cuda:0-matmul-fp32]"].throughput
    if not achieved or not ceiling:
        return False, "no TFLOP/s recorded"
    share = achieved / ceiling
    return share >= FP32_MATMUL_EFFICIENCY, f"{achieved:.1f} of {ceiling:.1f} TFLOP/s = {share:.0%}"


def _ratio(slow: str, fast: str, at_least: float) -> Callable[[dict[str, Result]], tuple[bool, str]]:
    def judge(b: dict[str, Result]) -> tuple[bool, str]:
        ratio = b[slow].median_s / b[fast].median_s
        return ratio >= at_least, f"{b[slow].median_s:.4g} s / {b[fast].median_s:.4g} s = {ratio:.2f}x"

    return judge


def _converged(b: dict[str, Result]) -> tuple[bool, str]:
    """Nine in ten GPU medians known to their precision (the CNN's fixed epochs aside)."""
    adaptive = [
        r
        for r in b.values()
        if r.device and not r.device.startswith(("cpu", "ddp")) and r.info.get("target_precision") is not None
    ]
    if not adaptive:
        return False, "cannot be computed: no GPU result says how its rounds stopped (a run from before rounds stopped on their own)"
    converged = sum(1 for r in adaptive if not r.noisy)
    share = converged / len(adaptive)
    noisy = ", ".join(r.name for r in adaptive if r.noisy)
    return share >= GPU_CONVERGED, f"{converged} of {len(adaptive)} = {share:.0%}" + (f" (noisy: {noisy})" if noisy else "")


TARGETS = (
    _Target(f"fp32 matmul >= {FP32_MATMUL_EFFICIENCY:.0%} of the fp32 ceiling", ("test_matmul[cuda:0-fp32]", "test_ceiling[cuda:0-matmul-fp32]"), _matmul),
    _Target(
        f"linear regression: cudagraph >= {LINREG_GRAPH_OVER_EAGER:g}x eager",
        ("test_linear_regression[cuda:0-eager]", "test_linear_regression[cuda:0-cudagraph]"),
        _ratio("test_linear_regression[cuda:0-eager]", "test_linear_regression[cuda:0-cudagraph]", LINREG_GRAPH_OVER_EAGER),
    ),
    _Target(
        f"CNN epoch: cudagraph >= {CNN_GRAPH_OVER_RESIDENT:g}x resident",
        ("test_cnn[cuda:0-resident]", "test_cnn[cuda:0-cudagraph]"),
        _ratio("test_cnn[cuda:0-resident]", "test_cnn[cuda:0-cudagraph]", CNN_GRAPH_OVER_RESIDENT),
    ),
    _Target(f"{GPU_CONVERGED:.0%} of GPU medians converged", (), _converged),
    _Target(
        "CNN epoch: resident faster than loader",
        ("test_cnn[cuda:0-loader]", "test_cnn[cuda:0-resident]"),
        _ratio("test_cnn[cuda:0-loader]", "test_cnn[cuda:0-resident]", 1.0 + 1e-9),
    ),
)


def check(run: dict | Run) -> list[Outcome]:
    run = as_run(run)
    by_name = run.by_name()
    failed = {e.get("name"): str(e.get("error", "")) for e in run.block.get("failed") or [] if isinstance(e, dict)}
    skipped = {e.get("name"): str(e.get("reason", "")) for e in run.block.get("skipped") or [] if isinstance(e, dict)}
    outcomes = []
    for target in TARGETS:
        missing = [name for name in target.needs if name not in by_name]
        if missing:
            why = "; ".join(
                f"{n} failed: {failed[n]}" if n in failed else f"{n} skipped: {skipped[n]}" if n in skipped else f"{n} not in the run"
                for n in missing
            )
            outcomes.append(Outcome(target.name, False, f"cannot be computed: {why}"))
            continue
        passed, detail = target.judge(by_name)
        outcomes.append(Outcome(target.name, passed, detail))
    return outcomes


@dataclass(frozen=True)
class EventCheck:
    name: str
    median_s: float
    event_median_s: float
    allowance_s: float  # the largest difference that still agrees
    allowance: str  # what it is: "3%", or the sync cost measured in the run
    agrees: bool

    @property
    def relative_diff(self) -> float:
        return abs(self.median_s - self.event_median_s) / self.event_median_s


def check_against_events(run: dict | Run, rel_tol: float = 0.03) -> list[EventCheck]:
    """Each GPU benchmark's median against the device events recorded around the same calls.

    They agree within ``rel_tol`` (3%) of the events' median, or, where the run measured what
    a synchronized round costs beyond its device work (``sync_overhead_max_s``: launching the
    first kernel, waking from the sync, reading the timer), within that cost per call. A
    benchmark's own spread is never an allowance: a noisy benchmark must agree as well.
    """
    checks = []
    for result in as_run(run).results:
        event_median = result.figure("cuda_event_median_s")
        if not event_median:
            continue
        allowance_s, allowance = rel_tol * event_median, f"{rel_tol:.0%}"
        overhead, iterations = result.figure("sync_overhead_max_s"), result.info.get("iterations") or 1
        if overhead and overhead / iterations > allowance_s:
            allowance_s = overhead / iterations
            allowance = f"sync cost {format_seconds(overhead)}" + (f" / {iterations} calls" if iterations > 1 else "")
        agrees = abs(result.median_s - event_median) <= allowance_s
        checks.append(EventCheck(result.name, result.median_s, event_median, allowance_s, allowance, agrees))
    return checks
