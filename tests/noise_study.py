"""How far apart fresh processes time the same code, per process setting (docs/comparing.md,
"Less noise at its source"):

    python tests/noise_study.py OUT [--processes 20] [--settings default,threads-1,...]
    python tests/noise_study.py OUT --table        # the table of what OUT holds so far

Runs the seed-size CPU matmul and the eager and fused linear regressions, each run a fresh
process, ``--processes`` times for every setting. The settings take turns in a new random
order each time round, so that whatever drifts during the hours the study takes (the host's
other tenants, the clock) falls on every setting alike. Then, per setting and benchmark, the
spread of the processes' medians: the standard deviation of their logarithms (about the
coefficient of variation), the range over the median, and the runs a side ``compare`` would
need to catch a 10% slowdown at that spread; the same for each run's CPU seconds
(``cpu_median_s``). Writes OUT/<setting>/<n>.json (the suite's own runs) and OUT/table.md.

Transparent huge pages are the kernel's (``/sys/kernel/mm/transparent_hugepage/enabled``):
their settings need root, and the study puts back what it found.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scipy.stats  # noqa: E402

from devicebench.reading import stats  # noqa: E402

SELECTION = "cpu and (test_matmul or (test_linear_regression and (eager or fused)))"
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
# name: (environment, command prefix, transparent huge pages mode or None for as found)
SETTINGS = {
    "default": ({}, [], None),
    "threads-1": ({"OMP_NUM_THREADS": "1"}, [], None),
    "omp-passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, [], None),
    "aslr-off": ({}, ["setarch", os.uname().machine, "-R"], None),
    "thp-never": ({}, [], "never"),
    "thp-always": ({}, [], "always"),
    "thp-torch": ({"THP_MEM_ALLOC_ENABLE": "1"}, [], None),
    "jemalloc": ({"LD_PRELOAD": str(JEMALLOC)}, [], None),
    "aslr-off+threads-1": ({"OMP_NUM_THREADS": "1"}, ["setarch", os.uname().machine, "-R"], None),
    # As "default", in the tree --slowed-tree names (code made slower on purpose): ab's error rates (tests/ab_rates.py).
    "slowed": ({}, [], None),
}


def thp_mode() -> str | None:
    try:
        return THP.read_text().split("[", 1)[1].split("]", 1)[0]
    except (OSError, IndexError):
        return None


def one_process(out: Path, name: str, index: int, tree: Path, slowed: Path | None = None) -> None:
    env_add, prefix, thp = SETTINGS[name]
    path = out / name / f"{index:03d}.json"
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    found = thp_mode()
    if thp is not None:
        THP.write_text(thp)
    try:
        if name == "slowed":
            tree = slowed
        env = {**os.environ, **env_add, "PYTHONPATH": str(tree)}
        cmd = [*prefix, sys.executable, "-m", "pytest", "benches", "--benchmark-only", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
        cmd += ["-k", SELECTION, f"--benchmark-json={path}.part"]
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    finally:
        if thp is not None and found is not None:
            THP.write_text(found)
    if proc.returncode != 0:
        (out / name / f"{index:03d}.log").write_text(proc.stdout + proc.stderr)
        print(f"{name} #{index} failed (exit {proc.returncode}); see its .log", file=sys.stderr)
        return
    Path(f"{path}.part").rename(path)


def medians(folder: Path) -> dict[str, dict[str, list[float]]]:
    found: dict[str, dict[str, list[float]]] = {}
    for path in sorted(folder.glob("*.json")):
        for bench in json.loads(path.read_text())["benchmarks"]:
            per = found.setdefault(bench["name"], {"wall": [], "cpu": []})
            per["wall"].append(bench["stats"]["median"])
            if bench["extra_info"].get("cpu_median_s"):
                per["cpu"].append(bench["extra_info"]["cpu_median_s"])
    return found


def spread(values: list[float]) -> tuple[float, float, int | None]:
    logs = [math.log(v) for v in values]
    sd = statistics.stdev(logs)
    needed = stats.runs_needed(sd, math.log1p(0.10), math.log1p(0.05), 0.05 / 3)
    return sd, (max(values) - min(values)) / statistics.median(values), needed


def table(out: Path) -> str:
    lines = [
        "| setting | benchmark | processes | median | wall sd | wall range | spread vs default: p | runs for 10% | CPU s | CPU sd | CPU range |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    default = medians(out / "default") if (out / "default").is_dir() else {}
    for name in SETTINGS:
        if not (out / name).is_dir():
            continue
        for bench, per in sorted(medians(out / name).items()):
            if len(per["wall"]) < 2:
                continue
            sd, rng, needed = spread(per["wall"])
            # Brown-Forsythe: do the log medians scatter differently from the default setting's?
            base = [math.log(v) for v in default.get(bench, {}).get("wall", [])]
            p = scipy.stats.levene([math.log(v) for v in per["wall"]], base, center="median").pvalue if name != "default" and len(base) > 2 else None
            cells = [name, f"`{bench}`", str(len(per["wall"])), f"{statistics.median(per['wall']):.4g} s", f"{sd:.1%}", f"{rng:.1%}"]
            cells += ["" if p is None else f"{p:.2g}", str(needed or "-")]
            if len(per["cpu"]) >= 2:
                csd, crng, _ = spread(per["cpu"])
                cells += [f"{statistics.median(per['cpu']):.4g}", f"{csd:.1%}", f"{crng:.1%}"]
            else:
                cells += ["", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, of " + ", ".join(SETTINGS))
    parser.add_argument("--tree", type=Path, default=ROOT, help="the source tree to time (default: this one)")
    parser.add_argument("--slowed-tree", type=Path, help="the tree the 'slowed' setting times: this code made slower on purpose")
    parser.add_argument("--table", action="store_true", help="only print the table of what OUT holds")
    args = parser.parse_args()
    names = [n for n in args.settings.split(",") if n]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings: {', '.join(unknown)}")
    if not args.table:
        if "slowed" in names and args.slowed_tree is None:
            parser.error("the slowed setting needs --slowed-tree")
        if any(SETTINGS[n][2] for n in names) and not os.access(THP, os.W_OK):
            parser.error(f"{THP} is not writable: the thp-* settings need root")
        rng = random.Random(0)
        for index in range(args.processes):
            order = rng.sample(names, len(names))
            for name in order:
                one_process(args.out, name, index, args.tree.resolve(), args.slowed_tree and args.slowed_tree.resolve())
            print(f"round {index + 1}/{args.processes} done", file=sys.stderr, flush=True)
    text = table(args.out)
    (args.out / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
