"""Where a run is stored: numbered, never overwritten, whole or not at all.

Runs stay in pytest-benchmark's format (its ``compare`` and others read them) under
``results/<machine slug>/<python platform>/NNNN_*.json``: pytest-benchmark's own numbered,
never-overwriting storage (:class:`RunStorage` subclasses its ``FileStorage``), with one
folder per machine. A number is claimed before the run is written (two runs saving at once
get one each), the file is written whole and renamed into place, and a run the folder cannot
take goes to the temporary folder with a warning.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

import pytest
from pytest_benchmark.storage.file import FileStorage
from pytest_benchmark.utils import safe_dumps

from devicebench.reading.files import fsync_folder, write_synced


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


def without_raw_rounds(bench: dict) -> dict:
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
    others = [b if plain_data else without_raw_rounds(b) for b in benchmarks if b.get("fullname") not in ours]
    theirs = {k: v for k, v in output_json.items() if k != "devicebench"}
    theirs.update(machine_info=machine, benchmarks=others)
    return mine, theirs


class RunStorage(FileStorage):
    """pytest-benchmark's file storage for a devicebench run: atomic saves under a claimed number.

    A run is written by :func:`write_new_run` (a kill or a full disk leaves no broken file);
    when the folder cannot take it, a copy goes to the temporary folder, a warning names it,
    and the session ends with exit status 1 (``recorder``, the run's :class:`~.recording.RunRecorder`, keeps it in ``unsaved``). Benchmarks of the same
    session that did not use devicebench's ``bench`` (``ours`` lists those that did) go where
    the user's own options send them: to ``plain`` (pytest-benchmark's storage, when
    devicebench moved the run to ``results/``), into the same file (``plain`` is "here"), or
    nowhere (``plain`` is None: the user asked to save nothing; devicebench saved its own).
    """

    def __init__(self, path, logger, default_machine_id, *, recorder, ours: set[str], plain, plain_data: bool):
        super().__init__(path, logger, default_machine_id=default_machine_id)
        self.recorder, self.ours, self.plain, self.plain_data = recorder, ours, plain, plain_data

    def save(self, output_json: dict, save: str) -> None:
        mine, theirs = split_run(output_json, self.ours, self.plain_data)
        if self.plain == "here":
            mine["benchmarks"] = [b if b.get("fullname") in self.ours or self.plain_data else without_raw_rounds(b) for b in output_json["benchmarks"]]
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
