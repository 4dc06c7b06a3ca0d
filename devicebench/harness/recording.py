"""What a run records beyond pytest-benchmark's own JSON (where it is stored: :mod:`.storage`).

Each run gains a top-level ``devicebench`` block: the options it ran with, the parametrizations it skipped and why,
and the benchmarks that failed and why, so that a later comparison can tell "skipped: no
CUDA" or "out of memory" from "removed".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_benchmark.utils import safe_dumps

from devicebench.reading.files import replace_file

from . import faults, storage

RUN_FORMAT_VERSION = 1


@dataclass
class RunRecord:
    size: str
    devices: tuple[str, ...]
    skipped: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    interrupted: bool = False  # stopped early (Ctrl-C, a timeout's SIGINT): later benchmarks are missing
    gpu_shared: list[dict] = field(default_factory=list)  # other processes on a GPU when the run began

    def add_report(self, report: pytest.TestReport) -> None:
        """Keep the skip or failure of a benchmark's call (or of its setup, where skips happen)."""
        if report.skipped:
            self.skipped.append({"fullname": report.nodeid, "name": _name(report.nodeid), "reason": skip_reason(report)})
        elif report.failed and all(f["fullname"] != report.nodeid for f in self.failed):
            # In its call, or in setting it up (a fixture's error) or down: a failure either way.
            self.failed.append({"fullname": report.nodeid, "name": _name(report.nodeid), "error": _first_line(report)})

    def as_json(self) -> dict:
        return {
            "format_version": RUN_FORMAT_VERSION,
            "bench_size": self.size,
            "bench_devices": list(self.devices),
            "skipped": self.skipped,
            "failed": self.failed,
            "interrupted": self.interrupted,
            "gpu_shared": self.gpu_shared,
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


class RunRecorder:
    """A pytest plugin that keeps a run's skips and failures and writes them into its JSON.

    Only the tests in ``ours`` (those that use devicebench's ``bench``) are recorded. It also
    makes ``--benchmark-json`` safe: an atomic write, and, when the file cannot be written, a
    copy in the temporary folder, a warning naming it, and exit status 1, with the results
    table printed all the same.
    """

    def __init__(self, size: str, devices: tuple[str, ...], ours: set[str] = frozenset()):
        self.record = RunRecord(size=size, devices=devices)
        self.ours = ours
        self.unsaved: list[str] = []  # what could not be stored where asked, and where it went

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid in self.ours:
            self.record.add_report(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:
        self.record.interrupted = True
        faults.number_every_line(excinfo)

    def pytest_benchmark_update_json(self, config, benchmarks, output_json: dict) -> None:
        output_json["devicebench"] = self.record.as_json()

    def keep_json_safely(self, saving, plain_data: bool) -> None:
        """``--benchmark-json`` written atomically (with a fallback copy); other benchmarks' raw rounds only where asked."""
        saving.write_json_with(functools.partial(self._save_json, saving, plain_data))

    def _save_json(self, saving, plain_data: bool, output_json: dict) -> None:
        if not plain_data:
            output_json = {**output_json, "benchmarks": [b if b.get("fullname") in self.ours else storage.without_raw_rounds(b) for b in output_json["benchmarks"]]}
        data = safe_dumps(output_json, ensure_ascii=True, indent=4).encode()
        path = Path(saving.json_path)
        try:
            replace_file(path, data)
        except OSError as exc:
            self.could_not(saving.logger, str(path), exc, data, path.stem)
            return
        saving.logger.info(f"Wrote benchmark data in: {path}", purple=True)

    def could_not(self, logger, where: str, exc: OSError, data: bytes, name: str) -> None:
        reason = exc.strerror or str(exc)
        try:
            copy = storage.fallback_copy(data, name)
            message = f"devicebench: the run could not be saved in {where} ({reason}); a copy is at {copy}"
        except OSError as again:
            message = f"devicebench: the run could not be saved in {where} ({reason}), nor in the temporary folder ({again.strerror or again})"
        self.unsaved.append(message)
        logger.warning(message)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session) -> None:
        if self.unsaved and session.exitstatus == 0:
            session.exitstatus = 1  # the results are not where they were asked for


