"""``devicebench``: the command line. Parses, then hands each command to a ``cmd_*`` function.

Exit codes: 0 fine, 1 a regression was found, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, as for every other bad input
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def format_info(info: dict) -> str:
    """The machine as a person reads it: what the tutorial's "is CUDA available?" section asks."""
    fp = info["fingerprint"]
    lines = [
        f"torch {info['torch']}, torchvision {info['torchvision']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}, "
        f"Python {info['python']}",
        f"CPU: {info['cpu_model']}, {info['cpu_threads']} threads ({info['torch_threads']} used by torch)",
        f"CUDA available: {'yes' if info['cuda_available'] else 'no'}, GPUs: {info['gpu_count']}",
    ]
    if info["nvidia_driver"]:
        lines.append(f"NVIDIA driver: {info['nvidia_driver']}")
    for gpu in info["gpus"]:
        lines.append(
            f"  cuda:{gpu['index']}: {gpu['name']}, {gpu['memory_bytes'] / 2**30:.1f} GiB, "
            f"compute capability {gpu['capability']}, {gpu['multiprocessors']} SMs"
        )
    settings = ", ".join(f"{k}={v}" for k, v in info["precision"].items())
    lines.append(f"precision settings: {settings}")
    lines.append(f"fingerprint: {fp['id']} (results folder results/{fp['slug']})")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from . import fingerprint

    info = fingerprint.machine_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return EXIT_OK


def _load(path: str) -> dict:
    from .runs import BadRun, load_run

    try:
        return load_run(path)
    except BadRun as exc:
        print(f"devicebench: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None


def cmd_show(args: argparse.Namespace) -> int:
    from . import runs

    run = _load(args.run)
    print(runs.describe_machine(run))
    print()
    print(runs.markdown_table(run))
    training = runs.training_table(run)
    if training:
        print()
        print(training)
    skipped = Counter(s["reason"] for s in run.get("devicebench", {}).get("skipped", []))
    if skipped:
        print(f"\nskipped ({sum(skipped.values())}):")
        for reason, count in skipped.most_common():
            print(f"  {count:3d} x {reason}")
    return EXIT_OK


def cmd_check_timing(args: argparse.Namespace) -> int:
    from . import runs

    checks = runs.check_against_events(_load(args.run), rel_tol=args.tolerance)
    if not checks:
        print(f"nothing to check: no benchmark in {args.run} ran on CUDA, so none has CUDA-event times")
        return EXIT_OK
    print("| benchmark | median | CUDA events | difference | IQR | verdict |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for c in checks:
        verdict = "agrees" if c.agrees else "DISAGREES"
        print(
            f"| `{c.name}` | {runs.format_seconds(c.median_s)} | {runs.format_seconds(c.event_median_s)} "
            f"| {c.relative_diff:.1%} | {runs.format_seconds(c.spread_s)} | {verdict} |"
        )
    bad = [c.name for c in checks if not c.agrees]
    if bad:
        print(f"{len(bad)} of {len(checks)} disagree with CUDA events: {', '.join(bad)}", file=sys.stderr)
        return EXIT_REGRESSION
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="devicebench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    info = sub.add_parser("info", help="what this machine has: versions, CPU, GPUs, precision settings")
    info.add_argument("--json", action="store_true", help="print the machine_info block the suite stores")
    info.set_defaults(func=cmd_info)
    show = sub.add_parser("show", help="one stored run as a table: medians, spread, cold start, throughput")
    show.add_argument("run", help="a run file, as the suite wrote it under results/")
    show.set_defaults(func=cmd_show)
    check = sub.add_parser("check-timing", help="check a GPU run's medians against its CUDA-event times")
    check.add_argument("run", help="a run file from a machine with CUDA")
    check.add_argument("--tolerance", type=float, default=0.03, help="relative difference allowed (default 0.03)")
    check.set_defaults(func=cmd_check_timing)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
