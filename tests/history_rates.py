"""How often ``devicebench history`` is wrong, measured on the committed gate runs (docs/comparing.md,
"How often history is wrong"). Run as ``python -m tests.history_rates``.

Unchanged: histories of 30 runs drawn with replacement from the 14 unchanged gate runs (A);
false change points per 100 runs per benchmark, confirmed and weak. Steps: histories of 15
runs, then the matmul (run-to-run spread about 3%) or the eager linear regression (about 9%)
slower by 5%, 10% or 20% from run 16 on; found when a change point on that benchmark lies at
run 16 or 17: confirmed, or named at all (confirmed or weak).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from devicebench.reading import history
from devicebench.reading.runs import Run, as_run, load_run

GATE = Path(__file__).resolve().parent / "data" / "runs" / "gate"
MATMUL = "test_matmul[cpu-fp32]"
LINREG = "test_linear_regression[cpu-eager]"
BEFORE = 15


def unchanged() -> list[tuple[Path, Run]]:
    return [(p, as_run(load_run(p))) for p in sorted((GATE / "A").glob("*.json"))]


def slowed(run: Run, benchmark: str, step: float) -> Run:
    results = tuple(dataclasses.replace(r, median_s=r.median_s * (1 + step)) if r.name == benchmark else r for r in run.results)
    return dataclasses.replace(run, results=results)


def drawn(pool, n: int, rng: random.Random, step: float = 0.0, at: int | None = None, benchmark: str = MATMUL) -> list[tuple[Path, Run]]:
    out = []
    for i in range(n):
        path, run = rng.choice(pool)
        if at is not None and i >= at:
            run = slowed(run, benchmark, step)
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


def detection(step: float, after: int, histories: int = 100, seed: int = 2, benchmark: str = MATMUL) -> tuple[float, float]:
    """(confirmed, named at all) shares of histories whose step on ``benchmark`` was found where it is."""
    pool, rng = unchanged(), random.Random(seed)
    confirmed = named = 0
    for _ in range(histories):
        points = history.change_points(drawn(pool, BEFORE + after, rng, step, at=BEFORE, benchmark=benchmark))
        found = [p for p in points if p.benchmark == benchmark and p.index in (BEFORE, BEFORE + 1)]
        confirmed += any(not p.weak for p in found)
        named += bool(found)
    return confirmed / histories, named / histories


def main() -> None:
    confirmed, weak = false_rate()
    print(f"unchanged, 200 histories of 30 runs: {confirmed:.3f} confirmed and {weak:.3f} weak change points per 100 runs per benchmark")
    print("| benchmark | step | 4 runs after | 6 runs after | 10 runs after | 15 runs after |")
    print("| --- | --- | --- | --- | --- | --- |")
    for benchmark in (MATMUL, LINREG):
        for step in (0.05, 0.10, 0.20):
            cells = [detection(step, after, benchmark=benchmark) for after in (4, 6, 10, 15)]
            print(f"| `{benchmark}` | {step:.0%} slower | " + " | ".join(f"{c:.0%} ({n:.0%})" for c, n in cells) + " |")


if __name__ == "__main__":
    main()
