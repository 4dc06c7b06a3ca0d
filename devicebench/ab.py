"""``devicebench ab BASE [HEAD]``: did a change make the benchmarks slower? One command.

Each side's own code runs: BASE is checked out into a temporary git worktree, HEAD is the
working tree as it is (or another worktree, when named), and every run is a fresh
``python -m pytest`` process in that tree with ``PYTHONPATH`` at it, so its devicebench, its
benches and its project code are the side's; the environment (torch, the plugins) is this
one. The sides take turns in a random order each round (randomized multiple interleaved
trials, Abedi and Brecht, ICPE 2017), so a drift of the machine falls on both alike.

**The fewest runs that can tell.** After each round, ``compare``'s rules judge every run so
far (no stored history: only these runs):

- exact work first: a step whose counted work grew, or whose instructions moved past the
  threshold, or a benchmark that failed, is a regression after one run a side, and ``ab``
  stops there;
- wall time is declared slower only after ``--repeats`` runs a side (a fixed design), so
  ``compare``'s family-wise alpha holds as stated; ``ab`` stops earlier only to *accept*:
  when no benchmark is slower or undecided (every one unchanged or faster), which can only
  lower the false alarms. ``--max-minutes`` starts no round that would not end in time.

Runs go to ``--out`` (default ``.benchmarks/ab/<time>``): ``base/`` and ``head/`` (pytest-
benchmark storage, one log per run), ``compare.md``, ``compare.json``, ``report/``
(``devicebench report`` of both sides) and ``ab.json`` (what ran, in which order, how long
each took, and why it stopped). The exit status is
``compare``'s: 0 no regression, 1 a regression, 2 bad input or not comparable, 3
inconclusive with ``--fail-inconclusive``; 130 when interrupted (the runs so far are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from .commands import EXIT_BAD_INPUT, compare_settings, exit_status

DEFAULT_PYTEST_ARGS = ("benches", "--benchmark-only")
EXIT_INTERRUPTED = 130
# What ab adds to every run: its own storage, and nothing of pytest's cache between the sides.
OWN_OPTIONS = ("--benchmark-storage", "--benchmark-autosave", "--benchmark-save", "--benchmark-json")
# Counted once: instructions per call do not vary between runs of the same code (measured).
FIRST_ROUND_ONLY = ("--bench-instructions",)
# pytest's own exit statuses that mean no benchmark was judged: stop, and say where to look.
PYTEST_FAILED_TO_RUN = {2: "interrupted", 3: "an internal error", 4: "a usage error", 5: "no tests collected"}


class AbError(Exception):
    """Bad input or a failing run: one line for the user, exit status 2."""


@dataclass
class Side:
    label: str  # "base" or "head"
    named: str  # what the user called it: a git revision, or "working tree"
    commit: str  # the commit its tree is at
    tree: Path  # its code
    storage: Path  # its runs
    modified: bool = False  # the working tree has uncommitted changes
    runs: list[dict] = field(default_factory=list)  # what ab.json records of each run

    def describe(self) -> str:
        what = f"{self.named} ({self.commit[:10]}{', with uncommitted changes' if self.modified else ''})"
        return f"{self.label} = {what}"


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise AbError("git is not installed: ab checks the baseline out with git worktree") from None
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["git failed"])[0]
        raise AbError(f"git {' '.join(args[:2])}: {first}")
    return proc.stdout.strip()


def _commit(repo: Path, revision: str) -> str:
    if revision.startswith("-"):
        raise AbError(f"{revision!r} is not a git revision")
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except AbError:
        raise AbError(f"{revision!r} is not a commit of {repo}") from None


def _checkout(stack: ExitStack, repo: Path, commit: str, label: str) -> Path:
    """A worktree of ``commit``, removed when ``stack`` closes."""
    where = Path(tempfile.mkdtemp(prefix=f"devicebench-ab-{label}-"))
    _git(repo, "worktree", "add", "--detach", "--quiet", str(where), commit)

    def remove() -> None:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(where)], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)
        subprocess.run(["git", "-C", str(repo), "worktree", "prune"], capture_output=True)

    stack.callback(remove)
    return where


def pytest_args(given: list[str]) -> list[str]:
    """The user's pytest arguments (default: the suite's benchmarks), refused where ab owns the option."""
    args = list(given) or list(DEFAULT_PYTEST_ARGS)
    for arg in args:
        if arg.split("=", 1)[0] in OWN_OPTIONS:
            raise AbError(f"{arg.split('=', 1)[0]}: ab stores each side's runs itself (see --out); leave it out of the pytest arguments")
    return args


def side_environment(tree: Path) -> dict[str, str]:
    """This environment, with the side's tree (and its src/, where it has one) first on the path.
    Nothing else is changed: no process setting measured here made fresh processes agree
    better (docs/comparing.md, "Less noise at its source")."""
    env = dict(os.environ)
    paths = [str(tree)] + ([str(tree / "src")] if (tree / "src").is_dir() else [])
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("GITHUB_STEP_SUMMARY", None)  # ab writes the summary once, at the end
    return env


@dataclass
class Plan:
    repeats: int
    max_s: float | None
    seed: int
    args: list[str]
    subdir: Path  # where in the tree pytest runs (where ab was started, relative to the repository)


def _stored(storage: Path) -> set[Path]:
    return set(storage.rglob("*.json"))


def run_once(side: Side, plan: Plan, round_no: int) -> None:
    """One fresh pytest process of ``side``; its run lands in the side's storage."""
    args = [a for a in plan.args if round_no == 1 or a not in FIRST_ROUND_ONLY]
    cmd = [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"]
    cmd += [f"--benchmark-storage=file://{side.storage}", "--benchmark-autosave"]
    logs = side.storage / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"run-{round_no:03d}.log"
    where = side.tree / plan.subdir
    if not where.is_dir():
        raise AbError(f"{side.label} ({side.commit[:10]}) has no folder {plan.subdir}: run ab from a folder both sides have")
    before = _stored(side.storage)
    began = time.perf_counter()
    with open(log, "w") as out:
        out.write(f"$ {shlex.join(cmd)}\n(in {where})\n")
        out.flush()
        status = subprocess.run(cmd, cwd=where, env=side_environment(side.tree), stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - began
    new = sorted(_stored(side.storage) - before)
    side.runs.append({"round": round_no, "pytest_exit": status, "seconds": round(seconds, 1), "run": [str(p) for p in new], "log": str(log)})
    if status in PYTEST_FAILED_TO_RUN:
        raise AbError(f"{side.label} run {round_no}: pytest stopped with {PYTEST_FAILED_TO_RUN[status]} (exit {status}); see {log}")
    if not new:
        raise AbError(f"{side.label} run {round_no}: pytest stored no run (exit {status}); see {log}")
    print(f"  {side.label}: {seconds:.0f} s{'' if status == 0 else f' (pytest exit {status}: a failed benchmark counts against its side)'}", file=sys.stderr, flush=True)


def judge(base: Side, head: Side, settings):
    """``compare``'s verdicts on every run so far, these runs only (no stored history)."""
    from .commands import _load_side
    from .reading import compare

    _, base_runs, _ = _load_side(str(base.storage), "results")
    _, head_runs, _ = _load_side(str(head.storage), "results")
    return compare.compare_sides(base_runs, head_runs, settings)


def stop_reason(result, round_no: int, repeats: int) -> str | None:
    """Why to run no more rounds, or None. A slowdown in wall time waits for the last round."""
    from .reading.verdicts import FAILED, SLOWER

    certain = [w.name for w in result.work if w.is_regression] + [v.name for v in result.verdicts if v.status == FAILED]
    if certain:
        return f"decided after {round_no} run{'s' if round_no > 1 else ''} a side by exact work or a failure: {', '.join(sorted(set(certain)))}"
    if round_no >= repeats:
        return f"{repeats} run{'s' if repeats > 1 else ''} a side (--repeats)"
    slower = [v for v in result.verdicts if v.status == SLOWER and not v.reference]
    if round_no >= 2 and result.compared and not result.inconclusive and not slower and not result.regressions:
        return f"every benchmark unchanged or faster after {round_no} runs a side"
    return None


def look(result, round_no: int) -> str:
    """One line on where the evidence stands after a round."""
    from .reading.verdicts import FASTER, SLOWER, UNCHANGED

    counts = {s: sum(1 for v in result.verdicts if v.status == s and not v.reference) for s in (SLOWER, FASTER, UNCHANGED)}
    parts = [f"{n} {s}" for s, n in counts.items() if n] + ([f"{len(result.inconclusive)} undecided"] if result.inconclusive else [])
    more = [w.name for w in result.work if w.is_regression]
    if more:
        parts.append(f"more work: {', '.join(more)}")
    return f"after {round_no} run{'s' if round_no > 1 else ''} a side: {', '.join(parts) or 'nothing compared'}"


def _sides(stack: ExitStack, repo: Path, base_rev: str, head_rev: str | None, out: Path) -> tuple[Side, Side]:
    base_commit = _commit(repo, base_rev)
    head_commit = _commit(repo, head_rev or "HEAD")
    base = Side("base", base_rev, base_commit, _checkout(stack, repo, base_commit, "base"), out / "base")
    if head_rev is None:
        modified = bool(_git(repo, "status", "--porcelain", "--untracked-files=no"))
        head = Side("head", "working tree", head_commit, repo, out / "head", modified=modified)
    else:
        head = Side("head", head_rev, head_commit, _checkout(stack, repo, head_commit, "head"), out / "head")
    return base, head


def _record(out: Path, plan: Plan, sides: tuple[Side, Side], orders: list[list[str]], reason: str) -> None:
    from .reading.files import replace_file

    record = {
        "seed": plan.seed,
        "pytest_args": plan.args,
        "rounds": orders,
        "stopped": reason,
        "sides": {s.label: {"named": s.named, "commit": s.commit, "modified": s.modified, "runs": s.runs} for s in sides},
    }
    replace_file(out / "ab.json", (json.dumps(record, indent=2) + "\n").encode())


def _report(result, out: Path, fmt: str, labels: tuple[str, str], settings) -> None:
    from .reading import render, report
    from .reading.files import replace_file

    try:  # both sides' runs over time, as ``devicebench report`` draws them
        report.write_report([str(out / "base"), str(out / "head")], str(out / "report"), settings)
    except (OSError, ValueError) as exc:
        print(f"devicebench ab: the report could not be written ({exc})", file=sys.stderr)

    markdown = render.comparison(result, "markdown", *labels)
    replace_file(out / "compare.md", (markdown + "\n").encode())
    replace_file(out / "compare.json", (render.comparison(result, "json", *labels) + "\n").encode())
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as handle:
            handle.write(markdown + "\n")
    print(markdown if fmt == "markdown" else render.comparison(result, fmt, *labels))


def run(args: argparse.Namespace) -> int:
    """The command: rounds until the evidence decides, then ``compare``'s verdict and exit status."""
    here = Path.cwd()
    repo = Path(_git(here, "rev-parse", "--show-toplevel"))
    out = Path(args.out or f".benchmarks/ab/{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    max_s = args.max_minutes * 60 if args.max_minutes else None
    subdir = here.resolve().relative_to(repo.resolve())
    plan = Plan(args.repeats, max_s, args.seed, pytest_args(args.pytest_args), subdir)
    settings = compare_settings(args)
    orders: list[list[str]] = []
    reason, result = "", None
    with ExitStack() as stack:
        base, head = _sides(stack, repo, args.base, args.head, out)
        out.mkdir(parents=True, exist_ok=True)
        print(f"devicebench ab: {base.describe()}; {head.describe()}", file=sys.stderr)
        print(f"devicebench ab: pytest {shlex.join(plan.args)}, up to {plan.repeats} runs a side, order seed {plan.seed}", file=sys.stderr)
        rng, began = random.Random(plan.seed), time.perf_counter()
        try:
            for round_no in range(1, plan.repeats + 1):
                elapsed = time.perf_counter() - began
                if plan.max_s is not None and round_no > 1 and elapsed * round_no / (round_no - 1) > plan.max_s:
                    reason = f"{round_no - 1} runs a side: another round would pass --max-minutes {args.max_minutes:g}"
                    break
                order = rng.sample([base, head], 2)
                orders.append([s.label for s in order])
                print(f"round {round_no}/{plan.repeats} ({elapsed / 60:.1f} min so far):", file=sys.stderr, flush=True)
                for side in order:
                    run_once(side, plan, round_no)
                result = judge(base, head, settings)
                print(f"  {look(result, round_no)}", file=sys.stderr, flush=True)
                reason = stop_reason(result, round_no, plan.repeats)
                if reason:
                    break
        except KeyboardInterrupt:
            _record(out, plan, (base, head), orders, "interrupted")
            print(f"devicebench ab: interrupted; the runs so far are in {out}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except AbError:
            _record(out, plan, (base, head), orders, "a run failed")
            raise
        _record(out, plan, (base, head), orders, reason)
    labels = (f"base ({base.commit[:10]})", f"head ({head.commit[:10]}{'+' if head.modified else ''})")
    _report(result, out, args.format, labels, settings)
    print(f"devicebench ab: stopped: {reason}; runs, logs, compare.md, compare.json and report/ in {out}", file=sys.stderr)
    return exit_status(result, *labels, args.fail_inconclusive)


def main(args: argparse.Namespace) -> int:
    """The command, with bad input as one line and exit 2; a seed is drawn when none is given."""
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    try:
        return run(args)
    except AbError as exc:
        print(f"devicebench ab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

