"""What a run stores beyond pytest-benchmark's own JSON, and where it stores it.

Runs stay in pytest-benchmark's format (its ``compare`` and others read them) under
``results/<machine slug>/<python platform>/NNNN_*.json``: pytest-benchmark's own numbered,
never-overwriting storage, with one folder per machine. Each run gains a top-level
``devicebench`` block: the options it ran with, the parametrizations it skipped and why,
and the benchmarks that failed and why, so that a later comparison can tell "skipped: no
CUDA" or "out of memory" from "removed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

RUN_FORMAT_VERSION = 1


@dataclass
class RunRecord:
    size: str
    devices: tuple[str, ...]
    skipped: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    interrupted: bool = False  # stopped early (Ctrl-C, a timeout's SIGINT): later benchmarks are missing

    def add_report(self, report: pytest.TestReport) -> None:
        """Keep the skip or failure of a benchmark's call (or of its setup, where skips happen)."""
        if report.skipped:
            self.skipped.append({"fullname": report.nodeid, "name": _name(report.nodeid), "reason": skip_reason(report)})
        elif report.failed and report.when == "call":
            self.failed.append({"fullname": report.nodeid, "name": _name(report.nodeid), "error": _first_line(report)})

    def as_json(self) -> dict:
        return {
            "format_version": RUN_FORMAT_VERSION,
            "bench_size": self.size,
            "bench_devices": list(self.devices),
            "skipped": self.skipped,
            "failed": self.failed,
            "interrupted": self.interrupted,
        }


def _name(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    return reason.removeprefix("Skipped: ")


def _first_line(report: pytest.TestReport) -> str:
    text = getattr(report, "longreprtext", "") or str(report.longrepr)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    return (errors[0][1:].strip() if errors else lines[-1] if lines else "failed")[:500]


def default_storage(rootdir: Path, machine_slug: str) -> str:
    return f"file://{rootdir / 'results' / machine_slug}"


def is_bench_path(arg: str, benches_dir: Path) -> bool:
    """Whether a command-line path (``benches``, ``benches/test_x.py::test_y[cpu]``) lies in ``benches/``."""
    path = Path(arg.split("::", 1)[0]).resolve()
    return path == benches_dir or benches_dir in path.parents


class RunRecorder:
    """A pytest plugin that keeps a run's skips and failures and writes them into its JSON."""

    def __init__(self, size: str, devices: tuple[str, ...]):
        self.record = RunRecord(size=size, devices=devices)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.record.add_report(report)

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        self.record.interrupted = True

    def pytest_benchmark_update_json(self, config, benchmarks, output_json: dict) -> None:
        output_json["devicebench"] = self.record.as_json()
