"""The sizes a run can have, their round budgets, and the suite's shared defaults.

`seed` is the tutorial's own sizes; `smoke` is tiny, for the harness tests and a quick check
that a machine runs the suite at all. Pick one with ``--bench-size``. Each workload declares
its own dimensions for each size (``devicebench.workloads``); here is what all share.
"""

from __future__ import annotations

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
    """How often a benchmark's step is called.

    One cold call (recorded apart as ``cold_start_s``), ``warmup`` calls that are not counted,
    then enough timed rounds to fill ``target_s``, clamped to ``[min_rounds, max_rounds]``.
    """

    warmup: int
    min_rounds: int
    max_rounds: int
    target_s: float

    def rounds_for(self, estimate_s: float) -> int:
        if not estimate_s > 0:
            return self.max_rounds
        return max(self.min_rounds, min(self.max_rounds, math.ceil(self.target_s / estimate_s)))


# Seed: about 10 s of timed rounds per benchmark. A 1 ms GPU matmul then gets 500 rounds (its
# median moves by well under 1% between runs), and a 3 s CPU linear-regression round still
# gets 5, which keeps the whole CPU suite within a few minutes on 2 cores.
SEED_ROUNDS = Rounds(warmup=2, min_rounds=5, max_rounds=500, target_s=10.0)
# Smoke: enough rounds for a median and an IQR, nothing more; the tests run this size.
SMOKE_ROUNDS = Rounds(warmup=1, min_rounds=3, max_rounds=10, target_s=0.2)


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
