"""How often ``devicebench history`` is wrong, measured on the committed gate runs (docs/comparing.md,
"How often history is wrong"). Run as ``python -m tests.history_rates``.

Unchanged: histories of 30 runs drawn with replacement from the 14 unchanged gate runs (A);
false change points per 100 runs per benchmark. Steps: the same histories with the matmul
slower by 5%, 10% or 20% from run k on; found when a confirmed change point on the matmul
lies at run k or k + 1, and how many runs after the step were needed.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from devicebench import history
from devicebench.runs import Run, as_run, load_run

GATE = Path(__file__).resolve().parent / "data" / "runs" / "gate"
MATMUL = "test_matmul[cpu-fp32]"


def unchanged() -> list[tuple[Path, Run]]:
    return [(p, as_run(load_run(p))) for p in sorted((GATE / "A").glob("*.json"))]


def drawn(pool, n: int, rng: random.Random, step: float = 0.0, at: int | None = None) -> list[tuple[Path, Run]]:
    out = []
    for i in range(n):
        path, run = rng.choice(pool)
        if at is not None and i >= at:
            results = tuple(dataclasses.replace(r, median_s=r.median_s * (1 + step)) if r.name == MATMUL else r for r in run.results)
            run = dataclasses.replace(run, results=results)
        out.append((Path(f"{i + 1:04d}_{path.name}"), run))
    return out


def false_rate(histories: int = 200, n: int = 30, seed: int = 1) -> tuple[float, float]:
    pool, rng = unchanged(), random.Random(seed)
    benchmarks = len(pool[0][1].results)
    confirmed = weak = 0
    for _ in range(histories):
        points = history.change_points(drawn(pool, n, rng))
        confirmed += sum(not p.weak for p in points)
        weak += sum(p.weak for p in points)
    per = 100 / (histories * n * benchmarks)
    return confirmed * per, weak * per


def detection(step: float, after: int, histories: int = 100, before: int = 15, seed: int = 2) -> float:
    pool, rng = unchanged(), random.Random(seed)
    found = 0
    for _ in range(histories):
        points = history.change_points(drawn(pool, before + after, rng, step, at=before))
        found += any(p.benchmark == MATMUL and not p.weak and p.index in (before, before + 1) for p in points)
    return found / histories


def main() -> None:
    confirmed, weak = false_rate()
    print(f"unchanged, 200 histories of 30 runs: {confirmed:.3f} confirmed and {weak:.3f} weak change points per 100 runs per benchmark")
    print("| step | 4 runs after | 6 runs after | 10 runs after | 15 runs after |")
    print("| --- | --- | --- | --- | --- |")
    for step in (0.05, 0.10, 0.20):
        cells = [f"{detection(step, after):.0%}" for after in (4, 6, 10, 15)]
        print(f"| {step:.0%} slower | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
