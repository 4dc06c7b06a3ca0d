"""How often ``devicebench compare`` is wrong, counted on the committed gate runs.

``tests/data/runs/gate/A`` holds unchanged seed-size CPU runs and ``S`` the same with every
matmul step 15% slower, interleaved A S A S ... on the 2-core machine
(``tests/data/make-gate-runs``). This module forms every comparison docs/comparing.md reports, and
``tests/test_gate_rates.py`` holds the gate to the rates; run it as a script for that page's table:

    python -m tests.gate_rates
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

from devicebench.reading import compare, stats
from devicebench.reading.runs import load_run

GATE = Path(__file__).parent / "data" / "runs" / "gate"
SLOWED = "test_matmul[cpu-fp32]"


def runs(side: str) -> list[dict]:
    return [load_run(p) for p in sorted((GATE / side).glob("*.json"))]


@dataclass(frozen=True)
class Rate:
    what: str
    hits: int
    comparisons: int

    def __str__(self) -> str:
        return f"{self.hits} of {self.comparisons} ({self.hits / self.comparisons:.0%})"


def _flags(result: compare.Comparison) -> set[str]:
    return {v.name for v in result.verdicts if v.is_regression}


def one_run_a_side_with_history(a: list[dict], limit: int | None = None) -> Rate:
    """Every ordered pair of unchanged runs, the other unchanged runs lending their spread."""
    pairs = list(itertools.permutations(range(len(a)), 2))[:limit]
    hits = 0
    for i, j in pairs:
        history = [run for k, run in enumerate(a) if k not in (i, j)]
        hits += bool(_flags(compare.compare_runs(a[i], a[j], history=history)))
    return Rate("A/A, one run a side with history", hits, len(pairs))


def splits(a: list[dict], per_side: int, count: int, seed: int = 0) -> Rate:
    """``count`` random splits of the unchanged runs into two disjoint sides of ``per_side``."""
    rng = random.Random(seed)
    hits = 0
    for _ in range(count):
        chosen = rng.sample(range(len(a)), 2 * per_side)
        base, cand = [a[k] for k in chosen[:per_side]], [a[k] for k in chosen[per_side:]]
        hits += bool(_flags(compare.compare_sides(base, cand)))
    return Rate(f"A/A, {per_side} runs against {per_side}", hits, count)


@dataclass(frozen=True)
class Detection:
    caught: int  # the slowed matmul flagged
    alone: int  # flagged, and nothing else
    comparisons: int
    others: int  # comparisons flagging an untouched benchmark


def detection(a: list[dict], s: list[dict], per_side: int, count: int, seed: int = 0) -> Detection:
    """``count`` comparisons of ``per_side`` unchanged runs against ``per_side`` slowed ones, drawn at random."""
    rng = random.Random(seed)
    caught = alone = others = 0
    for _ in range(count):
        base = [a[k] for k in rng.sample(range(len(a)), per_side)]
        cand = [s[k] for k in rng.sample(range(len(s)), per_side)]
        flags = _flags(compare.compare_sides(base, cand))
        caught += SLOWED in flags
        alone += flags == {SLOWED}
        others += bool(flags - {SLOWED})
    return Detection(caught, alone, count, others)


def detection_one_run(a: list[dict], s: list[dict]) -> Detection:
    """One unchanged run against one slowed run, the other unchanged runs lending their spread."""
    caught = alone = others = n = 0
    for i, j in itertools.product(range(len(a)), range(len(s))):
        history = [run for k, run in enumerate(a) if k != i]
        flags = _flags(compare.compare_runs(a[i], s[j], history=history))
        caught += SLOWED in flags
        alone += flags == {SLOWED}
        others += bool(flags - {SLOWED})
        n += 1
    return Detection(caught, alone, n, others)


def spreads(a: list[dict], relative: bool = False) -> dict[str, float]:
    """Run-to-run standard deviation of each benchmark's log median, raw or over the run's ceilings."""
    logs: dict[str, list[float]] = {}
    for run in a:
        ceilings = [math.log(b["stats"]["median"]) for b in run["benchmarks"] if b["extra_info"]["workload"] == "ceiling"]
        factor = statistics.fmean(ceilings) if relative and ceilings else 0.0
        for bench in run["benchmarks"]:
            if bench["extra_info"]["workload"] != "ceiling":
                logs.setdefault(bench["name"], []).append(math.log(bench["stats"]["median"]) - factor)
    return {name: statistics.stdev(values) for name, values in sorted(logs.items())}


def main() -> None:
    a, s = runs("A"), runs("S")
    settings = compare.Settings()
    print(f"{len(a)} unchanged and {len(s)} slowed runs; threshold {settings.threshold:.0%}, family-wise alpha {settings.alpha}\n")
    print("| comparison | any regression (false alarm) |\n| --- | --- |")
    for rate in (one_run_a_side_with_history(a), splits(a, 5, 50), splits(a, 7, 50)):
        print(f"| {rate.what} | {rate} |")
    print("\n| slowed matmul (+15%) | caught | caught, nothing else flagged | an untouched benchmark flagged |\n| --- | --- | --- | --- |")
    for label, d in (
        ("7 runs against 7, 10 random draws", detection(a, s, 7, 10)),
        ("5 runs against 5, 10 random draws", detection(a, s, 5, 10)),
        ("one run a side with history, every pair", detection_one_run(a, s)),
    ):
        print(f"| {label} | {d.caught} of {d.comparisons} | {d.alone} of {d.comparisons} | {d.others} of {d.comparisons} |")
    raw, rel = spreads(a), spreads(a, relative=True)
    family = len(raw)
    print("\n| benchmark | run-to-run spread (sd of log median) | relative to the ceilings | runs a side for a 10% slowdown |")
    print("| --- | ---: | ---: | ---: |")
    for name in raw:
        needed = stats.runs_needed(raw[name], math.log(1.10), settings.margin, settings.alpha / family)
        print(f"| `{name}` | {raw[name]:.3f} | {rel[name]:.3f} | {needed} |")


if __name__ == "__main__":
    main()
