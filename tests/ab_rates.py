"""How often ``devicebench ab``'s wall-time procedure is wrong, measured on fresh processes
(docs/comparing.md, "How often ab is wrong"):

    python tests/ab_rates.py UNCHANGED SLOWED [--repeats 5] [--trials 1000] [--slowed-name NAME]

UNCHANGED and SLOWED are folders of runs (one fresh process each, as
``tests/noise_study.py`` stores them) of the same selection under the same process settings:
unchanged code, and code whose NAME benchmarks were made slower. Each trial draws runs
without replacement and plays ``ab``'s rounds on them with ``ab``'s own stop rule and
``compare``'s verdicts: A/A trials draw both sides from UNCHANGED (a false alarm: any
regression), A/B trials the baseline from UNCHANGED and the change from SLOWED (a catch:
every NAME benchmark judged slower; each NAME benchmark's own rate too). Trials share
processes (a pool of 20 gives only two disjoint 5-a-side pairs), so the rates are resampled
estimates: the table says how many processes were behind them. Prints the rates and the
runs a side each needed. The study's processes are committed: ``tests/data/runs/noise/``
(``tests/test_ab_rates.py`` holds ``ab`` to the figures).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devicebench.ab import stop_reason  # noqa: E402
from devicebench.reading import compare, runs  # noqa: E402
from devicebench.reading.verdicts import SLOWER  # noqa: E402


def pool(folder: Path) -> list[runs.Run]:
    return [runs.load(p) for p in sorted(folder.glob("*.json"))]


def slowdown(same: list, slow: list, name: str) -> float:
    """The slowed code's median over the unchanged code's, of the processes' medians."""
    medians = [[r.by_name()[name].median_s for r in group if name in r.by_name()] for group in (same, slow)]
    return round(statistics.median(medians[1]) / statistics.median(medians[0]), 3)


def play(base: list, head: list, repeats: int, settings: compare.Settings):
    """ab's rounds on runs already made: (the final comparison, runs a side used)."""
    for k in range(1, repeats + 1):
        result = compare.compare_sides(base[:k], head[:k], settings)
        if stop_reason(result, k, repeats):
            return result, k
    return result, repeats


def rates(same: list, slow: list | None, repeats: int, trials: int, slowed_name: str = "test_linear_regression", seed: int = 0) -> dict:
    """A/A false alarms and (given ``slow``) A/B catches of ab's procedure, ``trials`` resampled trials each."""
    rng, settings = random.Random(seed), compare.Settings()
    alarms, caught, others, each, used = 0, 0, 0, {}, {"aa": [], "ab": []}
    for _ in range(trials):
        drawn = rng.sample(same, 2 * repeats)
        result, k = play(drawn[:repeats], drawn[repeats:], repeats, settings)
        alarms += bool(result.regressions)
        used["aa"].append(k)
        if slow is None:
            continue
        result, k = play(rng.sample(same, repeats), rng.sample(slow, repeats), repeats, settings)
        slower = {v.name for v in result.verdicts if v.status == SLOWER}
        targets = {v.name for v in result.verdicts if v.name.startswith(slowed_name) and not v.reference}
        caught += bool(targets) and targets <= slower
        others += bool(slower - targets)
        for name in targets:
            each[name] = each.get(name, 0) + (name in slower)
        used["ab"].append(k)
    found = {
        "processes": {"unchanged": len(same), "slowed": len(slow or [])},
        "repeats": repeats,
        "trials": trials,
        "false_alarms": alarms / trials,
        "aa_runs_a_side_mean": statistics.mean(used["aa"]),
    }
    if slow is None:
        return found
    return found | {
        "caught": caught / trials,
        "caught_each": {name: n / trials for name, n in sorted(each.items())},
        "slowdown_each": {name: slowdown(same, slow, name) for name in sorted(each)},
        "other_benchmarks_flagged": others / trials,
        "ab_runs_a_side_mean": statistics.mean(used["ab"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("unchanged", type=Path)
    parser.add_argument("slowed", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--slowed-name", default="test_linear_regression", help="the benchmarks the slowed code made slower (a name prefix)")
    args = parser.parse_args()
    summary = rates(pool(args.unchanged), pool(args.slowed), args.repeats, args.trials, args.slowed_name)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
