"""Sizes and round budgets of every workload, one frozen object per concern.

`seed` is the tutorial's own sizes; `smoke` is tiny, for the harness tests and a quick check
that a machine runs the suite at all. Pick one with ``--bench-size``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SIZES = ("smoke", "seed")
DEFAULT_SIZE = "seed"


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
class MatmulSize:
    """``c = torch.matmul(a, b)`` with a (m x k) and b (k x n), as the tutorial writes it."""

    m: int
    k: int
    n: int

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


@dataclass(frozen=True)
class LinRegSize:
    """The tutorial's linear regression: y = x @ w + b + noise, full-batch Adam.

    ``steps`` is the same at every size: fewer would stop short of convergence and the
    correctness guard (final loss near the noise variance) would no longer hold.
    """

    n: int
    steps: int
    lr: float = 0.1
    true_w: tuple[float, float] = (2.0, -3.0)
    true_b: float = 10.0
    noise_sd: float = 2.0
    x_low: float = -5.0
    x_high: float = 5.0


@dataclass(frozen=True)
class CeilingSize:
    """What a device can do at best, so that efficiency = achieved / ceiling is one division.

    Sizes differ per device kind: a CPU at GPU sizes would take minutes, and a GPU at CPU
    sizes would be launch-bound instead of bandwidth- or compute-bound.
    """

    copy_bytes_cpu: int
    copy_bytes_cuda: int
    matmul_n_cpu: int
    matmul_n_cuda: int


@dataclass(frozen=True)
class TransferSize:
    """Host-to-device and device-to-host copies, as ``.to("cuda:0")`` and ``.cpu()`` do."""

    nbytes: int


@dataclass(frozen=True)
class CnnSize:
    """The tutorial's CNN: ``epochs`` training epochs over ``n_train`` images, batch 128, Adam.

    Each epoch is one call: the first is the cold one, the others are the timed rounds (no
    warm-up: the model keeps training from round to round). The epoch count is fixed per
    size, never derived from measured speed, so that every device and every run trains the
    same model for as long, and accuracies and losses compare like with like.
    ``loader_workers`` is capped by the machine's cores.
    """

    n_train: int
    n_test: int
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3  # Adam's default, as the tutorial leaves it
    loader_workers: int = 4

    @property
    def rounds(self) -> Rounds:
        timed = self.epochs - 1
        return Rounds(warmup=0, min_rounds=timed, max_rounds=timed, target_s=0.0)


@dataclass(frozen=True)
class DataPipelineSize:
    """One pass over the training set through the DataLoader, for each worker count that fits."""

    n_train: int
    rounds: Rounds
    batch_size: int = 128
    workers: tuple[int, ...] = (0, 2, 4, 8)


@dataclass(frozen=True)
class Size:
    name: str
    rounds: Rounds
    matmul: MatmulSize
    linreg: LinRegSize
    ceiling: CeilingSize
    transfer: TransferSize
    cnn: CnnSize
    data_pipeline: DataPipelineSize


MiB = 1 << 20

SEED = Size(
    name="seed",
    rounds=SEED_ROUNDS,
    matmul=MatmulSize(m=10_000, k=200, n=10_000),
    linreg=LinRegSize(n=1_000_000, steps=500),
    # 1 GiB on a GPU is far past every cache; 256 MiB is past any CPU's last-level cache.
    # An 8192 matmul keeps an H100's tensor cores busy; 2048 does the same for CPU cores.
    ceiling=CeilingSize(copy_bytes_cpu=256 * MiB, copy_bytes_cuda=1024 * MiB, matmul_n_cpu=2048, matmul_n_cuda=8192),
    transfer=TransferSize(nbytes=256 * MiB),
    # A CPU epoch takes 20-40 s on 2 cores: one cold epoch and 3 timed ones keep each CPU
    # variant near 2 minutes, and 4 epochs take Fashion-MNIST past the accuracy floor (0.85).
    cnn=CnnSize(n_train=60_000, n_test=10_000, epochs=4),
    data_pipeline=DataPipelineSize(n_train=60_000, rounds=Rounds(warmup=0, min_rounds=3, max_rounds=10, target_s=20.0)),
)

SMOKE = Size(
    name="smoke",
    rounds=SMOKE_ROUNDS,
    matmul=MatmulSize(m=256, k=64, n=256),
    # 10,000 points still pin w and b to about 0.02 (noise sd / sqrt(n)): the guard holds.
    linreg=LinRegSize(n=10_000, steps=500),
    ceiling=CeilingSize(copy_bytes_cpu=4 * MiB, copy_bytes_cuda=16 * MiB, matmul_n_cpu=256, matmul_n_cuda=1024),
    transfer=TransferSize(nbytes=4 * MiB),
    cnn=CnnSize(n_train=1024, n_test=512, epochs=4, loader_workers=2),
    data_pipeline=DataPipelineSize(n_train=512, rounds=Rounds(warmup=0, min_rounds=3, max_rounds=3, target_s=0.1)),
)

_BY_NAME = {"seed": SEED, "smoke": SMOKE}


def get_size(name: str) -> Size:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown size {name!r}; valid sizes: {', '.join(SIZES)}") from None
