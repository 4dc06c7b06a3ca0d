"""Stored runs in the formats other tools read.

``github-action``: the ``customBiggerIsBetter`` input of github-action-benchmark, a JSON list
of ``{name, value, unit, range, extra}`` (the extractor's ``BenchmarkResult``: ``name``,
``unit``, ``range`` and ``extra`` strings, ``value`` a number; ``range`` read as ``± X`` in
the value's unit). Its own pytest extractor takes ``stats.ops`` (1/mean, "iter/sec"): an
epoch shows as 0.04 iter/sec with a stddev in seconds as its range, and every machine's
results share one series per name. Here each value is the benchmark's throughput in its own
unit (samples/s, TFLOP/s, GB/s, steps/s; calls/s for a benchmark that records none), the
range is half the width of the median's 95% interval in that unit, and the name carries the
machine, so that runs of two machines never meet in one series.
"""

from __future__ import annotations

import math

from .render import plain
from .runs import Result, Run
from .schema import unit_label
from .units import format_seconds


def _range(result: Result, value: float) -> str | None:
    """``± X``: the larger distance from the throughput to its interval's ends (work / median time, at each end)."""
    interval = result.median_interval()
    if interval is None or interval[0] <= 0:
        return None
    low_s, high_s = interval
    # Throughput is work / time: the interval's slow end is the throughput's low end.
    half = max(value * result.median_s / low_s - value, value - value * result.median_s / high_s)
    return f"± {half:.4g}" if math.isfinite(half) else None


def github_action(run: Run) -> list[dict]:
    """Every benchmark of ``run`` as a github-action-benchmark ``customBiggerIsBetter`` entry."""
    machine = str(run.fingerprint.get("slug") or run.fingerprint.get("id") or "unknown-machine")
    entries = []
    for result in sorted(run.results, key=lambda r: r.name):
        if result.throughput:
            value, unit = result.throughput, plain(unit_label(result.unit))
        else:
            value, unit = 1.0 / result.median_s, "calls/s"
        extra = [f"median {format_seconds(result.median_s)} per call", f"rounds: {result.rounds}"]
        known = result.how_well_known()
        if known:
            extra.append(f"median known to {known}")
        if result.bytes_counted:
            extra.append(f"bytes counted: {result.bytes_counted}")
        if result.device:
            extra.append(f"device: {plain(result.device)}")
        # One line each: names come from the run file and reach the action's comments and charts.
        entry = {"name": plain(f"{result.name} ({machine})"), "value": value, "unit": unit}
        spread = _range(result, value)
        if spread:
            entry["range"] = spread
        entry["extra"] = "\n".join(extra)
        entries.append(entry)
    return entries
