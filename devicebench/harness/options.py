"""devicebench's pytest options, declared without importing torch.

The plugin declares them in every pytest session of the environment, so this module reads
only plain data (:mod:`devicebench.reading.kinds`, :mod:`devicebench.measure.config`). Each option's default
is None in the parser and resolved here, so that "given" and "left at its default" stay
apart: giving any of them makes a session a devicebench run from the start
(:func:`given`). Values are validated by argparse (through pytest's ``addoption``): a bad
one is a usage error (exit status 4) naming the valid ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from devicebench.measure import config as _config
from devicebench.reading import kinds

# The longest --bench-dist-timeout: a week. torch.distributed turns the timeout into
# milliseconds, and inf or 1e308 of them overflows only when the first rank starts.
MAX_DIST_TIMEOUT_S = 7 * 24 * 3600.0
# Option dest -> its value when not given.
DEFAULTS = {
    "bench_size": _config.DEFAULT_SIZE,
    "bench_devices": kinds.DEVICE_IDS,
    "bench_dist_timeout": _config.DIST_TIMEOUT_S,
    "bench_median_within": _config.DEFAULT_WITHIN,
    "bench_allow_missing": False,
    "bench_instructions": False,
    "data_root": None,
    "data_download": False,
}


def _device_list(text: str) -> tuple[str, ...]:
    try:
        return kinds.parse_device_list(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_DIST_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds between 0 and {MAX_DIST_TIMEOUT_S:.0f} (a week)")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1 (0.01 = 1%)")
    return value


def _existing_dir(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    return path.resolve()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("devicebench", "devicebench: CPU/GPU training benchmarks (for tests that use its bench fixture)")
    group.addoption(
        "--bench-size",
        choices=_config.SIZES,
        default=None,
        help="workload sizes: 'seed' = the tutorial's (default), 'smoke' = tiny, to check a setup (not stored unless asked)",
    )
    group.addoption(
        "--bench-devices",
        type=_device_list,
        default=None,
        metavar="LIST",
        help=f"comma-separated devices to run, of {','.join(kinds.DEVICE_IDS)}, dp:K, ddp:cuda:K (K GPUs; "
        "dp and ddp:cuda include their K = 1..N-1 rungs on an N-GPU machine) (default: all this machine has; "
        "a device named here that the machine lacks is an error, see --bench-allow-missing)",
    )
    group.addoption(
        "--bench-allow-missing",
        action="store_true",
        default=None,
        help="skip the devices named in --bench-devices that this machine lacks, instead of refusing to run",
    )
    group.addoption(
        "--bench-instructions",
        action="store_true",
        default=None,
        help="after the timed benchmarks, count each CPU benchmark's instructions per call under Valgrind's callgrind "
        "(one process for the run; needs valgrind and a C compiler)",
    )
    group.addoption(
        "--bench-dist-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how long a DDP rank may take to join, or to answer one epoch, before the benchmark fails (default: 600)",
    )
    group.addoption(
        "--bench-median-within",
        "--bench-precision",  # its name until 2026-12-02, when "precision" meant the numeric settings too
        dest="bench_median_within",
        type=_fraction,
        default=None,
        metavar="FRACTION",
        help="stop a benchmark's rounds once its median's 95%% interval is within +-FRACTION of it "
        f"(default {_config.DEFAULT_WITHIN}: 1%%); the size's time limit stops noisier ones (--bench-precision: its old name)",
    )
    group.addoption(
        "--data-root",
        type=_existing_dir,
        default=None,
        metavar="PATH",
        help="folder holding data sets in torchvision's layout (MNIST/raw, FashionMNIST/raw)",
    )
    group.addoption(
        "--data-download",
        action="store_true",
        default=None,
        help="let torchvision download MNIST into the cache when no data set is found (needs a network)",
    )


def get(config: pytest.Config, dest: str):
    """An option's value, its default where it was not given."""
    value = config.getoption(dest, None)
    return DEFAULTS[dest] if value is None else value


def given(config: pytest.Config) -> list[str]:
    """The devicebench options this session was given (on the command line, in ``addopts`` or ``PYTEST_ADDOPTS``)."""
    return [dest for dest in DEFAULTS if config.getoption(dest, None) is not None]


def devices_named(config: pytest.Config) -> tuple[str, ...]:
    """The devices the user named in ``--bench-devices`` (empty when not given: every device, missing ones skipped)."""
    return config.getoption("bench_devices", None) or ()
