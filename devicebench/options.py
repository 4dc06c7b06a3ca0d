"""The suite's pytest options and what a bench run sets up before pytest-benchmark starts.

``--bench-size``, ``--bench-devices`` and ``--data-root`` are validated by argparse (through
pytest's ``addoption``), so a bad value is a usage error (exit status 4) naming the valid ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from pytest_benchmark.storage.file import FileStorage
from pytest_benchmark.utils import get_tag

from . import config as _config
from . import devices, distributed, env, fingerprint, recording

# pytest-benchmark's default storage; when it is still this, the user did not choose one.
_PYTEST_BENCHMARK_DEFAULT_STORAGE = "file://./.benchmarks"


def _device_list(text: str) -> tuple[str, ...]:
    try:
        return devices.parse_device_list(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# The longest --bench-dist-timeout: a week. torch.distributed turns the timeout into
# milliseconds, and inf or 1e308 of them overflows only when the first rank starts.
MAX_DIST_TIMEOUT_S = 7 * 24 * 3600.0


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
    group = parser.getgroup("devicebench", "devicebench: CPU/GPU training benchmarks")
    group.addoption(
        "--bench-size",
        choices=_config.SIZES,
        default=_config.DEFAULT_SIZE,
        help="workload sizes: 'seed' = the tutorial's (default), 'smoke' = tiny, to check a setup",
    )
    group.addoption(
        "--bench-devices",
        type=_device_list,
        default=devices.DEVICE_IDS,
        metavar="LIST",
        help=f"comma-separated devices to run, of {','.join(devices.DEVICE_IDS)}, dp:K, ddp:cuda:K (K GPUs; "
        "dp and ddp:cuda include their K = 1..N-1 rungs on an N-GPU machine) (default: all)",
    )
    group.addoption(
        "--bench-dist-timeout",
        type=_seconds,
        default=_config.DIST_TIMEOUT_S,
        metavar="SECONDS",
        help="how long a DDP rank may take to join, or to answer one epoch, before the benchmark fails (default: 600)",
    )
    group.addoption(
        "--bench-precision",
        type=_fraction,
        default=_config.DEFAULT_PRECISION,
        metavar="FRACTION",
        help="stop a benchmark's rounds once its median's 95%% interval is within +-FRACTION of it "
        f"(default {_config.DEFAULT_PRECISION}: 1%%); the size's time limit stops noisier ones",
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
        help="let torchvision download MNIST into the cache when no data set is found (needs a network)",
    )


def _xdist_active(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) or getattr(config.option, "dist", "no") != "no"


def is_bench_run(config: pytest.Config) -> bool:
    """A run of the suite's own ``benches/`` (a project's own benchmarks are found at collection)."""
    benches = config.rootpath / "benches"
    base = config.invocation_params.dir
    return any(recording.is_bench_path(str(base / arg), benches) for arg in config.args)


def configure(config: pytest.Config) -> None:
    """Refuse what cannot give honest numbers; make a bench run save its JSON under ``results/``."""
    if config.getoption("benchmark_only", False) and _xdist_active(config):
        raise pytest.UsageError(
            "benchmarks cannot be timed under xdist (-n/--dist): parallel workers share the CPU and GPU "
            "and would skew every number. Run them in one process: 'pytest benches --benchmark-only'. "
            "('pytest -n auto' is for the harness tests.)"
        )
    distributed.set_timeout(config.getoption("bench_dist_timeout"))
    if not is_bench_run(config):
        return
    option = config.option
    if option.benchmark_storage == _PYTEST_BENCHMARK_DEFAULT_STORAGE:
        option.benchmark_storage = recording.default_storage(config.rootpath, fingerprint.machine_info()["fingerprint"]["slug"])
    timing_off = option.benchmark_disable or option.benchmark_skip or _xdist_active(config)
    # Smoke timings only show that the suite runs; they are kept only when asked for
    # (--benchmark-autosave), so that results/ stays comparable.
    smoke = config.getoption("bench_size") == "smoke"
    if not (timing_off or smoke or option.benchmark_save or option.benchmark_autosave or option.benchmark_json):
        # The name --benchmark-autosave would give: commit id, time, "uncommitted-changes" if dirty.
        option.benchmark_autosave = get_tag(getattr(option, "benchmark_project_name", None))
    _keep_safely(config)


def _keep_safely(config: pytest.Config) -> None:
    """Raw rounds kept; only torchrun's rank 0 stores; the storage checked before the first benchmark; SIGTERM as Ctrl-C."""
    option = config.option
    # Raw round times keep each run's median, its interval and its spread recomputable.
    option.benchmark_save_data = True
    if env.is_secondary_rank():  # under torchrun only rank 0 stores the run
        option.benchmark_autosave = option.benchmark_save = option.benchmark_json = None
    # Where the run will go must take it before the first benchmark, not after the last.
    if option.benchmark_save or option.benchmark_autosave:
        folder = recording.storage_folder(option.benchmark_storage)
        if folder is not None:
            recording.check_writable(folder, "--benchmark-storage")
    if option.benchmark_json:
        recording.check_writable(Path(option.benchmark_json).parent, "--benchmark-json")
    recording.catch_terminate(config)


def adopt(session: pytest.Session) -> bool:
    """A project's own benchmarks (tests that use ``bench``) get the suite's keeping, once collected:
    stored under ``<rootdir>/results/<machine>/`` unless a storage was given, every
    ``--benchmark-only`` run saved, raw rounds kept. Other projects' pytest-benchmark runs are
    left as they are. Returns whether it adopted the session."""
    config = session.config
    bench_session = getattr(config, "_benchmarksession", None)
    if is_bench_run(config) or bench_session is None or bench_session.disabled:
        return False
    if not any("bench" in getattr(item, "fixturenames", ()) for item in session.items):
        return False
    option = config.option
    if option.benchmark_storage == _PYTEST_BENCHMARK_DEFAULT_STORAGE:
        option.benchmark_storage = recording.default_storage(config.rootpath, fingerprint.machine_info()["fingerprint"]["slug"])
        bench_session.storage = FileStorage(
            recording.storage_folder(option.benchmark_storage), bench_session.logger, default_machine_id=bench_session.machine_id
        )
    if option.benchmark_only and not (option.benchmark_save or option.benchmark_autosave or option.benchmark_json):
        option.benchmark_autosave = bench_session.autosave = get_tag(getattr(option, "benchmark_project_name", None))
    _keep_safely(config)
    bench_session.save_data = option.benchmark_save_data
    if env.is_secondary_rank():
        bench_session.autosave = bench_session.save = bench_session.json = None
    return True
