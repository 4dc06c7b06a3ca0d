"""``devicebench``: the command line. Parses, then hands each command to a ``cmd_*`` function.

Exit codes: 0 fine, 1 a regression was found, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys

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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="devicebench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    info = sub.add_parser("info", help="what this machine has: versions, CPU, GPUs, precision settings")
    info.add_argument("--json", action="store_true", help="print the machine_info block the suite stores")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
