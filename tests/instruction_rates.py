"""How often the instruction gate is wrong, measured (docs/comparing.md, "Exact work"):

    python tests/instruction_rates.py OUT [--runs 20] [--slowed 10] [--jobs 2]

Runs the CPU benchmarks a CI job gates on (smoke size: the matmul, the eager and fused linear
regressions, the ceilings) plus a step of our own with ``--bench-instructions``, each run a
fresh process: ``--runs`` runs of unchanged code, and ``--slowed`` runs in which our step
does 2% more work (51 matmuls instead of 50). Then ``devicebench compare`` with one run a
side: consecutive unchanged runs (false alarms: any benchmark whose instructions or work are
judged changed), and each slowed run against an unchanged one (catches: the step named as
slower by its instructions). Prints a table and writes OUT/rates.json. Instruction counts do
not depend on load, so runs may go in parallel (``--jobs``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEP = '''
import os, torch
a = torch.randn(128, 128, generator=torch.Generator().manual_seed(0))
CALLS = int(os.environ.get("STUDY_MATMULS", "50"))

def test_study_step(bench, device):
    bench.run(device, lambda: [a @ a for _ in range(CALLS)])
'''
SELECTION = "cpu and (test_matmul or test_ceiling or (test_linear_regression and not compile) or test_study_step)"


def one_run(out: Path, name: str, matmuls: int) -> Path:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "run.json"
    if json_path.exists():
        return json_path
    env = {**os.environ, "STUDY_MATMULS": str(matmuls), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "benches"), str(out / "test_study.py"), f"--rootdir={ROOT}", "-k", SELECTION]
    cmd += ["--benchmark-only", "--bench-size=smoke", "--bench-instructions", f"--benchmark-json={json_path}", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    (folder / "log.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed; see {folder / 'log.txt'}")
    return json_path


def judged(base: Path, cand: Path) -> dict[str, dict]:
    """Per benchmark with counted work: its instruction verdict, whether its work changed, and whether the gate fails on that."""
    proc = subprocess.run(
        [sys.executable, "-m", "devicebench", "compare", str(base), str(cand), "--format", "json", "--no-history"], capture_output=True, text=True, cwd=ROOT
    )
    found = json.loads(proc.stdout)
    return {w["name"]: {"instructions": w["instruction_status"], "work_changed": bool(w["changes"]), "more_work": bool(w["more_work"])} for w in found["work"]}


def flagged(verdict: dict) -> bool:
    return verdict["instructions"] != "unchanged" or verdict["work_changed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--slowed", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "test_study.py").write_text(STEP)
    plan = [(f"same{i:02d}", 50) for i in range(args.runs)] + [(f"slow{i:02d}", 51) for i in range(args.slowed)]
    with ThreadPoolExecutor(args.jobs) as pool:
        paths = dict(zip((n for n, _ in plan), pool.map(lambda p: one_run(args.out, *p), plan)))
    same = [paths[n] for n, m in plan if m == 50]
    slow = [paths[n] for n, m in plan if m == 51]
    alarms = [judged(a, b) for a, b in zip(same, same[1:])]
    catches = [judged(same[i % len(same)], s) for i, s in enumerate(slow)]
    per_call: dict[str, list[int]] = {}
    for path in same:
        for bench in json.loads(path.read_text())["benchmarks"]:
            found = bench["extra_info"].get("instructions")
            if found:
                per_call.setdefault(bench["name"], []).append(found["per_call"])
    false_pairs = sum(any(flagged(v) for v in pair.values()) for pair in alarms)
    caught = sum(c["test_study_step[cpu]"]["instructions"] == "slower" for c in catches)
    caught_work = sum(c["test_study_step[cpu]"]["more_work"] for c in catches)
    others = [name for c in catches for name, v in c.items() if name != "test_study_step[cpu]" and flagged(v)]
    spread = {name: (max(v) - min(v)) / statistics.median(v) for name, v in per_call.items()}
    result = {
        "unchanged_pairs": len(alarms),
        "pairs_with_a_false_alarm": false_pairs,
        "slowed_pairs": len(catches),
        "caught_by_instructions": caught,
        "caught_by_work": caught_work,
        "other_benchmarks_flagged": others,
        "pairs": {"unchanged": alarms, "slowed": catches},
        "between_run_spread": spread,
        "per_call": per_call,
    }
    (args.out / "rates.json").write_text(json.dumps(result, indent=2))
    print(f"unchanged pairs: {len(alarms)}, with a false alarm: {false_pairs}")
    print(f"2% more work in test_study_step: caught by its instructions in {caught} of {len(catches)}, by its counted work (FLOPs) in {caught_work}")
    print(f"other benchmarks flagged in those pairs: {len(others)} {sorted(set(others))}")
    for name, value in sorted(spread.items()):
        print(f"  {name}: {len(per_call[name])} runs, (max - min) / median {value:.4%}")


if __name__ == "__main__":
    main()
