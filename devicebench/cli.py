"""devicebench: read, compare and report stored benchmark runs (JSON under results/), at once.

  devicebench info                   what this machine has (versions, CPU, GPUs, settings)
  devicebench show latest            one run: medians, how well each is known, throughput
  devicebench speedup latest         how much faster on each GPU than on this CPU, like for like
  devicebench compare 1,2,3 4,5,6    gate runs against runs: exit 1 on a regression
  devicebench report --out report    every stored run: index.html, summary.md, charts
  devicebench export latest          one run in github-action-benchmark's format
  devicebench history results        where each benchmark's level moved: change points, code or machine
  devicebench ab main                run main and your working tree interleaved, and gate like compare
  devicebench store push URL runs/   add runs to the store a fleet's CI jobs share (a git branch)
  devicebench store pull URL history bring the store into a folder that history and report read
  devicebench index results          build or update the index beside the runs (history reads it)

Exit status: 0 fine, 1 a regression was found (or a check failed), 2 bad input or runs
that cannot be compared (one line on stderr), 3 an inconclusive comparison when
``compare --fail-inconclusive`` asks for it. The benchmarks themselves run under pytest:
``pytest benches --benchmark-only``.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import commands
from .commands import EXIT_BAD_INPUT, EXIT_OK
from .reading.render import FORMATS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, as for every other bad input
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _number(kind: type, low: float, high: float, inclusive: bool):
    """An argparse type: a number of ``kind`` between ``low`` and ``high``, with a one-line error otherwise."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
        if not (low <= value <= high if inclusive else low < value < high):
            raise argparse.ArgumentTypeError(f"{text} is not between {low} and {high}")
        return value

    return parse


def _fraction(low: float, high: float):
    return _number(float, low, high, inclusive=False)


def _count(low: int, high: int):
    return _number(int, low, high, inclusive=True)


def _add_compare_options(parser: argparse.ArgumentParser) -> None:
    from .reading.compare import Settings

    parser.add_argument(
        "--threshold",
        type=_fraction(0, 10),
        default=Settings.threshold,
        help=f"smallest slowdown that counts; the 95%% interval must clear it (default {Settings.threshold})",
    )
    parser.add_argument(
        "--alpha",
        type=_fraction(0, 1),
        default=Settings.alpha,
        help=f"family-wise significance level over all benchmarks of a comparison, Holm's procedure (default {Settings.alpha})",
    )
    parser.add_argument(
        "--accuracy-drop",
        type=_fraction(0, 1),
        default=Settings.accuracy_drop,
        help=f"validation-accuracy drop that counts (default {Settings.accuracy_drop})",
    )
    parser.add_argument(
        "--instruction-threshold",
        type=_fraction(0, 10),
        default=Settings.instruction_threshold,
        help="change of instructions per call (--bench-instructions) that counts, one run a side "
        f"(default {Settings.instruction_threshold}: unchanged code varies by far less, measured)",
    )
    parser.add_argument(
        "--allow-more-work",
        action="store_true",
        help="report a step that now syncs, copies or computes more (its exact work) without failing on it",
    )


RUN_HELP = "a run file, or a run id in --results: 0003, 3 or latest (this machine's)"
RESULTS_HELP = "where run ids are looked up (default: results)"


def _add_info(sub) -> None:
    info = sub.add_parser("info", help="what this machine has: versions, CPU, GPUs, precision settings")
    shown = info.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the machine_info block the suite stores")
    shown.add_argument(
        "--folder", action="store_true", help="print only this machine's results folder (results/<machine>), which pytest-benchmark's --storage takes"
    )
    info.set_defaults(func=commands.cmd_info)


def _add_checks(sub) -> list:
    show = sub.add_parser("show", help="one stored run as a table: medians, spread, cold start, throughput, failures")
    show.add_argument("run", help=RUN_HELP)
    show.add_argument("--format", choices=("table", "markdown"), default="table", help="terminal table (default) or Markdown")
    show.set_defaults(func=commands.cmd_show)
    check = sub.add_parser("check-timing", help="check a GPU run's medians against its CUDA-event times")
    check.add_argument("run", help=RUN_HELP)
    check.add_argument(
        "--tolerance",
        type=_fraction(0, 1),
        default=0.03,
        help="relative difference allowed (default 0.03); at least the sync cost the run measured, per call",
    )
    check.add_argument("--format", choices=("table", "markdown"), default="table")
    check.set_defaults(func=commands.cmd_check_timing)
    targets = sub.add_parser("check-targets", help="the suite's GPU speed targets on one run; exit 1 if one fails or cannot be computed")
    targets.add_argument("run", help=RUN_HELP)
    targets.add_argument("--format", choices=("table", "markdown"), default="table")
    targets.set_defaults(func=commands.cmd_check_targets)
    return [show, check, targets]


def _add_compare(sub):
    comp = sub.add_parser(
        "compare",
        help="gate runs against baseline runs: exit 1 on a regression",
        description="Exit status: 0 no regression (inconclusive verdicts included, unless --fail-inconclusive); "
        "1 a regression; 2 bad input, or not comparable (other hardware, slower across a changed environment, "
        "nothing compared); 3 inconclusive with --fail-inconclusive. Example: devicebench compare 4,6,8 5,7,9",
    )
    comp.add_argument("baseline", help=RUN_HELP + "; several joined by commas (0004,0006,0008), or a folder of runs")
    comp.add_argument("candidate", help=RUN_HELP + "; several joined by commas, or a folder of runs")
    _add_compare_options(comp)
    comp.add_argument("--format", choices=FORMATS, default="table", help="terminal table (default), markdown or json")
    comp.add_argument("--allow-mismatch", action="store_true", help="compare runs of different hardware")
    comp.add_argument(
        "--history",
        metavar="DIR",
        help="stored runs that lend their run-to-run spread when a side has one run (default: --results); "
        "only runs of the same fingerprint, size and software count",
    )
    comp.add_argument("--no-history", action="store_true", help="use no stored runs: one run a side is then inconclusive")
    comp.add_argument(
        "--min-history",
        type=_count(2, 1000),
        default=5,
        metavar="N",
        help="stored runs needed to estimate the run-to-run spread (default 5)",
    )
    comp.add_argument("--fail-inconclusive", action="store_true", help="exit 3 when a verdict is inconclusive")
    comp.add_argument(
        "--allow-env-change",
        action="store_true",
        help="the change under test is the software (torch, CUDA, cuDNN, driver, Python): count slowdowns "
        "across it as regressions (without it they make the runs not comparable, exit 2)",
    )
    comp.set_defaults(func=commands.cmd_compare)
    return comp


def _add_outputs(sub) -> list:
    speed = sub.add_parser("speedup", help="one run's speed-up matrix: each GPU over its CPU like for like, dp over cuda:0, efficiency")
    speed.add_argument("run", help=RUN_HELP)
    speed.add_argument("--format", choices=FORMATS, default="table")
    speed.set_defaults(func=commands.cmd_speedup)
    exp = sub.add_parser(
        "export",
        help="one run in another tool's format: github-action (github-action-benchmark's customBiggerIsBetter JSON)",
        description="Each benchmark as its throughput in its own unit (samples/s, TFLOP/s, GB/s, steps/s), the median's "
        "95%% interval as its range, the machine in its name. Example: devicebench export latest --output bench.json",
    )
    exp.add_argument("run", help=RUN_HELP)
    exp.add_argument("--format", choices=("github-action",), default="github-action", help="the output format (default github-action)")
    exp.add_argument("--output", metavar="FILE", help="write here (whole or not at all) instead of to standard output")
    exp.set_defaults(func=commands.cmd_export)
    rep = sub.add_parser("report", help="history report of every stored run: index.html, summary.md, charts")
    rep.add_argument("results_dir", nargs="*", default=["results"], help="folders of stored runs, or run files (default: results)")
    rep.add_argument("--out", required=True, help="folder to write the report into")
    _add_compare_options(rep)
    rep.set_defaults(func=commands.cmd_report)
    hist = sub.add_parser(
        "history",
        help="change points in each machine's history: where a benchmark's level moved, with its evidence, code or machine",
        description="Each benchmark's run medians, per machine fingerprint and size, segmented (ruptures' binary segmentation) "
        "and each boundary tested with the gate's rank test (Holm over all of them); read through the index beside the runs "
        "(devicebench index). Example: devicebench history results --format json",
    )
    hist.add_argument("results_dir", nargs="*", default=["results"], help="folders of stored runs, or run files (default: results)")
    hist.add_argument("--threshold", type=_fraction(0, 10), default=0.05, help="a confirmed change clears this ratio (default 0.05)")
    hist.add_argument("--alpha", type=_fraction(0, 1), default=0.05, help="family-wise error rate over every candidate (default 0.05)")
    hist.add_argument("--format", choices=FORMATS, default="table")
    hist.set_defaults(func=commands.cmd_history)
    return [speed, exp]


def _cmd_ab(args: argparse.Namespace) -> int:
    from . import ab

    return ab.main(args)


def _add_ab(sub) -> None:
    ab = sub.add_parser(
        "ab",
        help="run a baseline commit and your change interleaved, and gate: exit 1 on a regression",
        usage="devicebench ab BASE [HEAD] [options] [-- PYTEST ARGS]",
        description="Checks BASE out into a temporary git worktree and runs each side's own code (PYTHONPATH at its tree) "
        "in fresh pytest processes, the sides in a random order each round, until compare's rules decide: exact work "
        "(counted operations, host reads, copies, FLOPs; instructions with --bench-instructions) after one run a side, "
        "wall time after --repeats runs a side, or earlier when every benchmark is unchanged or faster. PYTEST ARGS "
        "(after --) default to: benches --benchmark-only. Exit status as compare's: 0 no regression, 1 a regression, "
        "2 bad input or not comparable, 3 inconclusive with --fail-inconclusive, 130 interrupted. "
        "Example: devicebench ab main -- benches --benchmark-only -k 'cpu and matmul'",
    )
    ab.add_argument("base", metavar="BASE", help="the baseline: a git revision (main, HEAD~1, a tag, a commit)")
    ab.add_argument("head", metavar="HEAD", nargs="?", help="the change: a git revision (default: the working tree, uncommitted changes included)")
    ab.add_argument("--repeats", type=_count(1, 100), default=5, metavar="N", help="most runs a side; a slowdown in wall time is judged after N (default 5)")
    ab.add_argument("--max-minutes", type=_number(float, 0, 10080, inclusive=False), metavar="M", help="start no round that would end after M minutes")
    ab.add_argument("--out", metavar="DIR", help="where the runs, logs and verdicts go (default: .benchmarks/ab/<date-time>)")
    ab.add_argument("--seed", type=int, default=None, help="seed of the rounds' random order (default: drawn at random; recorded in ab.json)")
    _add_compare_options(ab)
    ab.add_argument("--format", choices=FORMATS, default="table", help="how the verdict is printed (compare.md and compare.json are written too)")
    ab.add_argument("--fail-inconclusive", action="store_true", help="exit 3 when a verdict is inconclusive")
    ab.set_defaults(func=_cmd_ab, pytest_args=[])


def _cmd_store(args: argparse.Namespace) -> int:
    from . import store

    try:
        if args.action == "push":
            for stored in store.push(args.remote, args.runs, args.branch, log=lambda line: print(line, file=sys.stderr)):
                print(f"{stored.source}: {'stored as ' + stored.path if stored.path else 'already stored as ' + stored.existing}")
        else:
            count = store.pull(args.remote, args.folder, args.branch)
            print(f"{args.folder}: {count} stored run(s) from {args.branch}")
    except store.StoreError as exc:
        print(f"devicebench store: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _add_store(sub) -> None:
    st = sub.add_parser(
        "store",
        help="the store a fleet's CI jobs share: stored runs on a branch of a git repository",
        description="push adds runs to the branch, numbered after those there (two jobs at once lose nothing: the "
        "second reads the branch again and pushes again); pull brings the branch into a folder that history and report "
        "read. Example: devicebench store push https://github.com/you/project.git .benchmarks/ab/head",
    )
    actions = st.add_subparsers(dest="action", required=True, parser_class=_Parser)
    push = actions.add_parser("push", help="add runs (files, or folders of stored runs) to the store")
    push.add_argument("remote", metavar="URL", help="the git repository: a URL or a path git can push to")
    push.add_argument("runs", nargs="+", metavar="RUN", help="run files, or folders of stored runs")
    pull = actions.add_parser("pull", help="bring the store into a folder (cloned the first time, updated after)")
    pull.add_argument("remote", metavar="URL", help="the git repository: a URL or a path git can fetch from")
    pull.add_argument("folder", metavar="FOLDER", help="where the runs go; history and report read it")
    for action in (push, pull):
        action.add_argument("--branch", default="devicebench-runs", help="the branch that holds the runs (default devicebench-runs)")
    st.set_defaults(func=_cmd_store)
    index = sub.add_parser(
        "index",
        help="build or bring up to date the index beside stored runs, which history and report read",
        description="One SQLite file per folder, <folder>/.devicebench/index.sqlite (in the user's cache where the folder "
        "is read-only): each run's figures without its rounds, and the analyses of its history. Rebuilt from the runs at will.",
    )
    index.add_argument("results_dir", nargs="*", default=["results"], help="folders of stored runs (default: results)")
    index.add_argument("--rebuild", action="store_true", help="forget the index and build it again from the runs")
    index.set_defaults(func=commands.cmd_index)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="devicebench", description=__doc__.split("Exit status")[0].strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_info(sub)
    _add_ab(sub)
    _add_store(sub)
    reads_runs = [*_add_checks(sub), _add_compare(sub), *_add_outputs(sub)]
    for command in reads_runs:
        command.add_argument("--results", default="results", help=RESULTS_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = None
    if argv[:1] == ["ab"] and "--" in argv:  # ab's own options, then pytest's
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    args = build_parser().parse_args(argv)
    if extra is not None:
        args.pytest_args = extra
    try:
        return args.func(args)
    except BrokenPipeError:  # `devicebench show ... | head`: the reader left; nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
