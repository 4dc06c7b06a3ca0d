"""The sizes a run can have, their round budgets, and the suite's shared defaults.

`seed` is the tutorial's own sizes; `smoke` is tiny, for the harness tests and a quick check
that a machine runs the suite at all. Pick one with ``--bench-size``. Each workload declares
its own dimensions for each size (``devicebench.workloads``); here is what all share.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

SIZES = ("smoke", "seed")
DEFAULT_SIZE = "seed"

# How long a DDP rank may take to join its process group or answer one epoch: long enough
# for a seed-size CPU epoch on one core, short enough that a hung rank ends the benchmark.
# --bench-dist-timeout changes it; every wait of the spawned and the launched ranks uses it.
DIST_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Rounds:
    """How often a benchmark's step is called, and when to stop.

    One cold call (recorded apart as ``cold_start_s``) and ``warmup`` calls that are not
    counted; then timed rounds until the median is known: its distribution-free 95% interval
    lies within +-``within`` of it, after at least ``settle_rounds`` rounds and
    ``min_time_s`` (stop reason "converged"). Otherwise the rounds stop at ``max_time_s``
    ("time limit") or ``max_rounds`` ("round limit") and the result is noisy. Never fewer
    than ``min_rounds``, whatever the time. ``within=None`` runs exactly ``min_rounds``
    (:meth:`fixed`: a training epoch per round, whose count the accuracy depends on).
    """

    warmup: int
    min_rounds: int
    max_rounds: int
    max_time_s: float
    min_time_s: float = 0.5
    settle_rounds: int = 6  # the fewest rounds with a 95% interval for the median
    within: float | None = 0.01  # the median's 95% interval, half-width over the median, to stop at

    @classmethod
    def fixed(cls, rounds: int, warmup: int = 0) -> Rounds:
        return cls(warmup=warmup, min_rounds=rounds, max_rounds=rounds, max_time_s=math.inf, min_time_s=0.0, within=None)

    def aiming_within(self, within: float) -> Rounds:
        """The same budget aiming at another interval (``--bench-median-within``); fixed counts stay fixed."""
        return self if self.within is None else dataclasses.replace(self, within=within)


# Seed, measured (docs/how-it-measures.md, "How many rounds"): GPU kernels of 0.1-20 ms reach +-1% in well
# under a second (the H200's matmuls, copies and graph replays: 0.02-0.6% after 500 rounds);
# launch-bound GPU work and CPU work wander by 2-15% within a run and never get there, so
# the time limit decides their cost: 5 s, half the old fixed budget, still 15+ rounds of a
# 0.3 s CPU matmul. At least 3 rounds for a median, however long a round.
SEED_ROUNDS = Rounds(warmup=1, min_rounds=3, max_rounds=100_000, max_time_s=5.0)
# Smoke: enough rounds for a median, nothing more; the tests run this size.
SMOKE_ROUNDS = Rounds(warmup=1, min_rounds=3, max_rounds=10, max_time_s=0.2, min_time_s=0.0)
DEFAULT_WITHIN = 0.01  # NVBench's default is 0.5%; 1% is what --bench-median-within starts from


@dataclass(frozen=True)
class Size:
    name: str
    rounds: Rounds


_BY_NAME = {"seed": Size("seed", SEED_ROUNDS), "smoke": Size("smoke", SMOKE_ROUNDS)}


def get_size(name: str) -> Size:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown size {name!r}; valid sizes: {', '.join(SIZES)}") from None


MiB = 1 << 20
