"""How often ``devicebench ab``'s wall-time procedure is wrong, measured on fresh processes
(docs/comparing.md, "How often ab is wrong"):

    python tests/ab_rates.py UNCHANGED SLOWED [--repeats 5] [--trials 1000] [--slowed-name NAME]

UNCHANGED and SLOWED are folders of runs (one fresh process each, as
``tests/noise_study.py`` stores them) of the same selection under the same process settings:
unchanged code, and code whose NAME benchmarks were made slower. Each trial draws runs
without replacement and plays ``ab``'s rounds on them with ``ab``'s own stop rule and
``compare``'s verdicts: A/A trials draw both sides from UNCHANGED (a false alarm: any
regression), A/B trials the baseline from UNCHANGED and the change from SLOWED (a catch:
every NAME benchmark judged slower, nothing else). Trials share processes (a pool of 20
gives only two disjoint 5-a-side pairs), so the rates are resampled estimates: the table
says how many processes were behind them. Prints the rates, the runs a side each needed,
and writes ``rates.json`` beside UNCHANGED.
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


def play(base: list, head: list, repeats: int, settings: compare.Settings):
    """ab's rounds on runs already made: (the final comparison, runs a side used)."""
    for k in range(1, repeats + 1):
        result = compare.compare_sides(base[:k], head[:k], settings)
        if stop_reason(result, k, repeats):
            return result, k
    return result, repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("unchanged", type=Path)
    parser.add_argument("slowed", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--slowed-name", default="test_linear_regression", help="the benchmarks the slowed code made slower (a name prefix)")
    args = parser.parse_args()
    same, slow = pool(args.unchanged), pool(args.slowed)
    rng, settings = random.Random(0), compare.Settings()
    found = {"aa": {"alarms": 0, "runs": []}, "ab": {"caught": 0, "runs": [], "others": 0}}
    for _ in range(args.trials):
        drawn = rng.sample(same, 2 * args.repeats)
        result, used = play(drawn[: args.repeats], drawn[args.repeats :], args.repeats, settings)
        found["aa"]["alarms"] += bool(result.regressions)
        found["aa"]["runs"].append(used)
        base, head = rng.sample(same, args.repeats), rng.sample(slow, args.repeats)
        result, used = play(base, head, args.repeats, settings)
        slower = {v.name for v in result.verdicts if v.status == SLOWER}
        targets = {v.name for v in result.verdicts if v.name.startswith(args.slowed_name) and not v.reference}
        found["ab"]["caught"] += bool(targets) and targets <= slower
        found["ab"]["others"] += bool(slower - targets)
        found["ab"]["runs"].append(used)
    summary = {
        "processes": {"unchanged": len(same), "slowed": len(slow)},
        "repeats": args.repeats,
        "trials": args.trials,
        "false_alarms": found["aa"]["alarms"] / args.trials,
        "aa_runs_a_side_mean": statistics.mean(found["aa"]["runs"]),
        "caught": found["ab"]["caught"] / args.trials,
        "other_benchmarks_flagged": found["ab"]["others"] / args.trials,
        "ab_runs_a_side_mean": statistics.mean(found["ab"]["runs"]),
    }
    (args.unchanged.parent / "rates.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
