"""Runs named as users name them: a path, a run id (``3``, ``0003``), ``latest``, a folder.

Ids and ``latest`` mean this machine's runs (:class:`~devicebench.reading.host.Host`, read
without torch): the folder of its fingerprint, or else the folders whose runs' fingerprint
matches it, when they are one machine's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .host import Host
from .runs import RUN_FILE, BadRun

RUN_ID = re.compile(r"[0-9]{1,9}")


def stored_runs(results_dir: str | Path) -> list[Path]:
    """Every run file under ``results_dir`` (pytest-benchmark's ``NNNN_*.json``), in path order."""
    root = Path(results_dir)
    return sorted(p for p in root.rglob("*.json") if RUN_FILE.match(p.name) and p.is_file())


def is_file(path: str | Path) -> bool:
    """Whether ``path`` names a file; False, not an error, for a name the file system refuses (too long)."""
    try:
        return Path(path).is_file()
    except OSError:
        return False


def this_machines_runs(runs: list[Path], host: Host) -> list[Path]:
    """Those of ``runs`` that this machine stored: in its fingerprint's folder, or else in the
    folders whose runs' fingerprint :meth:`Host.matches` (one machine's, never several)."""
    slug = host.slug
    exact = [p for p in runs if slug and slug in p.parts]
    if exact:
        return exact
    by_folder: dict[Path, list[Path]] = {}
    for p in runs:
        by_folder.setdefault(p.parent, []).append(p)
    matching = {folder: _fingerprint_of(paths[-1]) for folder, paths in by_folder.items()}
    matching = {folder: fp for folder, fp in matching.items() if host.matches(fp)}
    if len({fp.get("id") for fp in matching.values()}) != 1:
        return []
    return [p for folder in matching for p in by_folder[folder]]


def _fingerprint_of(path: Path) -> dict:
    """A stored run's hardware fingerprint; {} where unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        fingerprint = data["machine_info"]["devicebench"]["fingerprint"]
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return {}
    return fingerprint if isinstance(fingerprint, dict) else {}


def _run_time(path: Path) -> str:
    """The run's own time (pytest-benchmark's ``datetime``), for ordering; "" where unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("datetime")
    except (OSError, ValueError, RecursionError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def resolve(arg: str, results_dir: str | Path, host: Host | None = None) -> Path:
    """A run file from a path, or from a run id (``0003``, ``3``, ``latest``) in ``results_dir``.

    ``latest`` is the newest run of this machine (``host``'s folder, whatever its platform
    folder), by the run's own time. Ids are numbered per platform folder, so an id means this
    machine's run, and one that exists in several folders is ambiguous.
    """
    path = Path(arg)
    if is_file(path):
        return path
    if not (arg == "latest" or RUN_ID.fullmatch(arg)):
        shown = arg if len(arg) <= 300 else f"{arg[:60]}... ({len(arg)} characters)"
        raise BadRun(f"{shown}: no such file, and not a run id (a number such as 0003, or 'latest')")
    runs = stored_runs(results_dir)
    if not runs:
        raise BadRun(f"{arg}: no stored runs under {results_dir}")
    mine = this_machines_runs(runs, host) if host is not None else []
    if arg == "latest":
        machines = {p.relative_to(results_dir).parts[0] for p in runs}
        pool = mine or (runs if len(machines) == 1 else [])
        if not pool:
            raise BadRun(f"latest: runs of several machines under {results_dir} and none of this one; give a path")
        return max(pool, key=lambda p: (_run_time(p), p.name))
    prefix = f"{int(arg):04d}_"
    matches = [p for p in runs if p.name.startswith(prefix)]
    if len(matches) > 1:
        matches = [p for p in matches if p in mine] or matches
    if not matches:
        raise BadRun(f"{arg}: no run {prefix[:-1]} under {results_dir}")
    if len(matches) > 1:
        same = len({p.relative_to(results_dir).parts[0] for p in matches}) == 1
        where = "several platform folders of one machine" if same else "several machines"
        raise BadRun(f"{arg}: ambiguous, run {prefix[:-1]} exists in {where} ({', '.join(map(str, matches))}); give a path")
    return matches[0]
