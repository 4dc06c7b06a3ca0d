"""What a run stores beyond pytest-benchmark's own JSON, and where it stores it.

Runs stay in pytest-benchmark's format (its ``compare`` and others read them) under
``results/<machine slug>/<python platform>/NNNN_*.json``: pytest-benchmark's own numbered,
never-overwriting storage, with one folder per machine. Each run gains a top-level
``devicebench`` block: the options it ran with, the parametrizations it skipped and why,
and the benchmarks that failed and why, so that a later comparison can tell "skipped: no
CUDA" or "out of memory" from "removed".
"""

from __future__ import annotations

import functools
import os
import re
import signal
import tempfile
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_benchmark.storage.file import FileStorage
from pytest_benchmark.utils import safe_dumps

from .files import fsync_folder, replace_file, write_synced

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


def default_storage(rootdir: Path, machine_slug: str) -> str:
    return f"file://{rootdir / 'results' / machine_slug}"


def next_run_number(folder: Path) -> int:
    """One past the highest ``NNNN_`` number in ``folder`` (1 in an empty one)."""
    numbers = [int(m.group(1)) for p in folder.glob("*.json") if (m := re.match(r"([0-9]{4,})_", p.name))]
    return max(numbers, default=0) + 1


def write_new_run(folder: Path, suffix: str, data: bytes) -> Path:
    """Store ``data`` as ``folder/NNNN_<suffix>.json`` with the next free number, atomically.

    The bytes go to a hidden temporary file in the same folder, are flushed to disk, and only
    then take their name: a kill or a full disk leaves no ``NNNN_`` file, or a whole one.
    The number is claimed first (:func:`_claim`), and checked free under the claim, so runs
    saving into one folder at once never share a number.
    """
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{suffix[:100]}.{os.getpid()}.partial"
    try:
        write_synced(partial, data)
        for _ in range(100_000):
            number = next_run_number(folder)
            claim = _claim(folder, number)
            if claim is None:
                time.sleep(0.01)  # another run is saving this number right now
                continue
            try:
                if any(folder.glob(f"{number:04d}_*.json")):  # saved between our look and our claim
                    continue
                target = folder / f"{number:04d}_{suffix}.json"
                try:
                    os.link(partial, target)
                except FileExistsError:
                    continue
                except OSError:  # a file system without hard links: the claim holds the number
                    os.replace(partial, target)
                break
            finally:
                claim.unlink(missing_ok=True)
        else:
            raise OSError(f"no free run number in {folder}")
    finally:
        partial.unlink(missing_ok=True)
    fsync_folder(folder)
    return target


# A claim left by a run killed while saving does not block its number for longer than this.
STALE_CLAIM_S = 60.0


def _claim(folder: Path, number: int) -> Path | None:
    """Hold ``number`` in ``folder`` while saving under it (a file made with O_EXCL); None if another run holds it."""
    claim = folder / f".{number:04d}.claim"
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return claim
    except FileExistsError:
        try:
            if time.time() - claim.stat().st_mtime > STALE_CLAIM_S:
                claim.unlink(missing_ok=True)
        except OSError:
            pass
        return None


def fallback_copy(data: bytes, name: str) -> Path:
    """Where a run goes when its storage cannot take it: a new file in the temporary folder."""
    fd, path = tempfile.mkstemp(prefix="devicebench-unsaved-", suffix=f"-{name[:60]}.json")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(path)


def check_writable(folder: Path, what: str) -> None:
    """Raise pytest.UsageError unless ``folder`` can be created and written into: found before the first benchmark, not after the last."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".devicebench-probe-"):
            pass
    except OSError as exc:
        raise pytest.UsageError(f"{what} {folder}: cannot write there ({exc.strerror or exc}); no benchmark was run") from None


def storage_folder(storage: str) -> Path | None:
    """The folder of a ``--benchmark-storage`` value (``file://PATH`` or a plain path); None for other schemes."""
    if storage.startswith("file://"):
        return Path(storage[len("file://") :])
    if "://" in storage:
        return None
    return Path(storage)


def _without_raw_rounds(bench: dict) -> dict:
    stats = bench.get("stats")
    if isinstance(stats, dict) and "data" in stats:
        bench = {**bench, "stats": {k: v for k, v in stats.items() if k != "data"}}
    return bench


def split_run(output_json: dict, ours: set[str], plain_data: bool) -> tuple[dict, dict]:
    """(devicebench's run, the other benchmarks' run) of one session's JSON.

    devicebench's keeps the whole JSON with only the benchmarks that used its ``bench``; the
    other has the rest as pytest-benchmark alone would have stored them: no devicebench
    blocks, raw rounds only where the user asked for them (``--benchmark-save-data``).
    """
    benchmarks = output_json.get("benchmarks", [])
    mine = {**output_json, "benchmarks": [b for b in benchmarks if b.get("fullname") in ours]}
    machine = {k: v for k, v in output_json.get("machine_info", {}).items() if k != "devicebench"}
    others = [b if plain_data else _without_raw_rounds(b) for b in benchmarks if b.get("fullname") not in ours]
    theirs = {k: v for k, v in output_json.items() if k != "devicebench"}
    theirs.update(machine_info=machine, benchmarks=others)
    return mine, theirs


class RunStorage(FileStorage):
    """pytest-benchmark's file storage for a devicebench run: atomic saves under a claimed number.

    A run is written by :func:`write_new_run` (a kill or a full disk leaves no broken file);
    when the folder cannot take it, a copy goes to the temporary folder, a warning names it,
    and the session ends with exit status 1 (``recorder.unsaved``). Benchmarks of the same
    session that did not use devicebench's ``bench`` (``ours`` lists those that did) go where
    the user's own options send them: to ``plain`` (pytest-benchmark's storage, when
    devicebench moved the run to ``results/``), into the same file (``plain`` is "here"), or
    nowhere (``plain`` is None: the user asked to save nothing; devicebench saved its own).
    """

    def __init__(self, path, logger, default_machine_id, *, recorder: RunRecorder, ours: set[str], plain, plain_data: bool):
        super().__init__(path, logger, default_machine_id=default_machine_id)
        self.recorder, self.ours, self.plain, self.plain_data = recorder, ours, plain, plain_data

    def save(self, output_json: dict, save: str) -> None:
        mine, theirs = split_run(output_json, self.ours, self.plain_data)
        if self.plain == "here":
            mine["benchmarks"] = [b if b.get("fullname") in self.ours or self.plain_data else _without_raw_rounds(b) for b in output_json["benchmarks"]]
        elif self.plain is not None and theirs["benchmarks"]:
            self.plain.save(theirs, save)
        data = safe_dumps(mine, ensure_ascii=True, indent=4).encode()
        folder = self.get("run.json").parent
        try:
            path = write_new_run(folder, save, data)
        except OSError as exc:
            self.recorder.could_not(self.logger, f"{folder}", exc, data, save)
            return
        self.logger.info(f"Saved benchmark data in: {path}")


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
        number_every_line(excinfo)

    def pytest_benchmark_update_json(self, config, benchmarks, output_json: dict) -> None:
        output_json["devicebench"] = self.record.as_json()

    def keep_json_safely(self, bench_session, plain_data: bool) -> None:
        """``--benchmark-json`` written atomically (with a fallback copy); other benchmarks' raw rounds only where asked."""
        bench_session.save_json = functools.partial(self._save_json, bench_session, plain_data)

    def _save_json(self, bench_session, plain_data: bool, output_json: dict) -> None:
        if not plain_data:
            output_json = {**output_json, "benchmarks": [b if b.get("fullname") in self.ours else _without_raw_rounds(b) for b in output_json["benchmarks"]]}
        data = safe_dumps(output_json, ensure_ascii=True, indent=4).encode()
        try:
            replace_file(Path(bench_session.json), data)
        except OSError as exc:
            self.could_not(bench_session.logger, str(bench_session.json), exc, data, Path(bench_session.json).stem)
            return
        bench_session.logger.info(f"Wrote benchmark data in: {bench_session.json}", purple=True)

    def could_not(self, logger, where: str, exc: OSError, data: bytes, name: str) -> None:
        reason = exc.strerror or str(exc)
        try:
            copy = fallback_copy(data, name)
            message = f"devicebench: the run could not be saved in {where} ({reason}); a copy is at {copy}"
        except OSError as again:
            message = f"devicebench: the run could not be saved in {where} ({reason}), nor in the temporary folder ({again.strerror or again})"
        self.unsaved.append(message)
        logger.warning(message)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session) -> None:
        if self.unsaved and session.exitstatus == 0:
            session.exitstatus = 1  # the results are not where they were asked for


def _numbered(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` rebuilt with a line number in every entry (the function's first line where there was none)."""
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    rebuilt = None
    for entry in reversed(entries):
        line = entry.tb_lineno if entry.tb_lineno is not None else entry.tb_frame.f_code.co_firstlineno
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, line)
    return rebuilt


def _unnumbered(tb: types.TracebackType | None) -> bool:
    while tb is not None:
        if tb.tb_lineno is None:
            return True
        tb = tb.tb_next
    return False


def number_every_line(excinfo: pytest.ExceptionInfo) -> None:
    """A signal can land on an instruction without a line number (CPython 3.11+ then gives
    ``tb_lineno`` None), and pytest's report of the interruption fails on it with a TypeError:
    exit status 1 and a traceback instead of 2 and "Interrupted". Such entries get their
    function's first line, in the exception and its causes."""
    seen, error = set(), excinfo.value
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _unnumbered(error.__traceback__):
            error.__traceback__ = _numbered(error.__traceback__)
        error = error.__cause__ or error.__context__
    if _unnumbered(excinfo.tb):
        excinfo.traceback = type(excinfo.traceback)(_numbered(excinfo.tb))


def terminate_as_interrupt(signum, frame) -> None:
    """SIGTERM (``timeout``, ``docker stop``, Slurm, CI cancellation) ends a run as Ctrl-C does:
    pytest-benchmark stores what finished, and the run says it was interrupted."""
    raise KeyboardInterrupt(f"terminated by signal {signum}")


def catch_terminate(config: pytest.Config) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGTERM, terminate_as_interrupt)
    config.add_cleanup(lambda: signal.signal(signal.SIGTERM, previous))
