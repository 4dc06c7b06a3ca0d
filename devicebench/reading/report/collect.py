"""Stored runs read for the report: found, checked, cached by content, grouped by machine, and each benchmark's history as points."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .. import speedup
from ..files import replace_file
from ..index import Index, Memo
from ..run_ids import stored_runs
from ..runs import BadRun, Result, Run, as_run, describe_machine, load


@dataclass
class Machine:
    fingerprint: str
    description: str
    runs: list[tuple[Path, Run]] = field(default_factory=list)

    same_as_another: bool = False  # another machine of the report has the same short name
    cache: "RunCache | None" = field(default=None, repr=False)  # where whole runs are read from
    memo: "Memo | None" = field(default=None, repr=False)  # analyses of its history kept in an index (Memo.save keeps new ones)

    def whole(self, i: int) -> tuple[Path, Run]:
        """Run ``i`` whole (rounds included), read from its file where the index gave only its figures."""
        path, run = self.runs[i]
        if run.partial:
            run = (self.cache or RunCache(None)).load(path)
            self.runs[i] = (path, run)
        return path, run

    @property
    def short(self) -> str:
        """The machine in a few words, for a table: ``Intel Xeon (16 threads), NVIDIA H200``, with its
        fingerprint where another machine of the report reads the same."""
        short = self.description.split("; ")[0]
        return f"{short} [{self.fingerprint[:8]}]" if self.same_as_another else short


@dataclass(frozen=True)
class Written:
    index: Path
    summary: Path
    charts: int
    runs: int
    machines: int
    warnings: list[str]
    drawn: int = 0  # charts drawn this time (the others were kept from before)


def run_files(sources: list[str | Path] | str | Path) -> list[Path]:
    """Every run file of ``sources``: a folder's stored runs, a file as it is; each once."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    found: dict[Path, Path] = {}
    for source in map(Path, sources):
        for path in stored_runs(source) if source.is_dir() else [source]:
            found.setdefault(path.resolve(), path)
    return list(found.values())


CACHE_VERSION = "1"


class RunCache:
    """What the report reads of each run, kept in ``<out>/.cache/``: every round's time is most of a
    run file and the report needs only the median's interval, so a run read once is read again
    from a file a tenth its size. An entry is found by the run file's path, size and modification
    time; it is checked like any run when read, and one that cannot be read is read from the run."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.used: set[str] = set()
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                self.folder = None  # a report without a cache is slower, not wrong

    def load(self, path: Path) -> Run:
        if self.folder is None:
            return load(path)
        try:
            stat = path.stat()
        except OSError:
            return load(path)  # which says why in one line
        key = hashlib.sha256(f"{CACHE_VERSION}\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:24]
        entry = self.folder / f"{key}.json"
        self.used.add(entry.name)
        if entry.exists():
            try:
                return as_run(json.loads(entry.read_text(encoding="utf-8")), path)
            except (OSError, ValueError, RecursionError, BadRun):
                pass
        run = load(path)
        try:
            replace_file(entry, json.dumps(_slim(run), separators=(",", ":")).encode())
        except OSError:
            pass
        return run

    def prune(self) -> None:
        """Forget the runs that are no longer there, or have changed."""
        if self.folder is not None:
            for stale in self.folder.glob("*.json"):
                if stale.name not in self.used:
                    stale.unlink(missing_ok=True)


def _slim(run: Run) -> dict:
    """The run without its rounds, its medians' intervals (as :meth:`Result.median_interval` finds them) recorded instead."""
    data = dict(run.raw)
    benchmarks = []
    for bench, result in zip(run.raw["benchmarks"], run.results):
        stats = {k: v for k, v in bench["stats"].items() if k != "data"}
        stats["rounds"] = result.rounds
        info = {k: v for k, v in (bench.get("extra_info") or {}).items() if k not in ("median_ci_low_s", "median_ci_high_s")}
        interval = result.median_interval()
        if interval is not None:
            info["median_ci_low_s"], info["median_ci_high_s"] = interval
        benchmarks.append({**bench, "stats": stats, "extra_info": info})
    data["benchmarks"] = benchmarks
    return data


def collect(
    sources: list[str | Path] | str | Path, cache: RunCache | None = None, index: bool = True, detail: str = "report", progress=None
) -> tuple[list[Machine], list[str]]:
    """Runs grouped by hardware fingerprint (and size, where not seed), oldest first; unreadable files
    become warnings. A folder's runs are read through its index (partial runs: :meth:`Machine.whole`
    reads one whole; ``detail="history"``: only what change points need); ``index=False`` reads every file whole."""
    machines: dict[str, Machine] = {}
    warnings = []
    cache = cache or RunCache(None)
    memos: list[Memo] = []
    for path, run in _read(sources, cache, detail if index else None, warnings, memos, progress):
        fp = str(run.fingerprint.get("id", "unknown"))
        size = run.size
        # Smoke and seed timings of one machine are different workloads: separate histories.
        key = f"{fp}-{size}" if size and size != "seed" else fp
        description = describe_machine(run).split("; run of")[0] + (f", {size} size" if size and size != "seed" else "")
        machine = machines.setdefault(key, Machine(key, description, cache=cache, memo=memos[0] if memos else None))
        machine.runs.append((path, run))
    for machine in machines.values():
        machine.runs.sort(key=lambda pr: (pr[1].datetime, pr[0].name))
    # Machines with a GPU first: they carry the answer most readers came for.
    ordered = sorted(machines.values(), key=lambda m: (not _accelerated(m.runs[-1][1]), m.description))
    names = [m.short for m in ordered]
    for machine in ordered:
        machine.same_as_another = names.count(machine.short) > 1
    return ordered, warnings


def _indexed(source: Path, detail: str, warnings: list[str], memos: list[Memo], progress) -> list | None:
    """(path, partial run) of a folder's runs through its index; None where the index cannot be used now (then the files are read whole)."""
    found = Index.open(source)
    try:
        found.update(stored_runs(source), progress)
        runs, said = found.runs(detail)
        memos.append(found.memo())
    except sqlite3.Error as exc:  # locked by another reader for a minute, or a disk that failed under it
        warnings.append(f"the index of {source} cannot be read now ({exc}): its runs are read from their files")
        return None
    finally:
        found.close()
    warnings += said
    return [(run.path, run) for run in runs]


def _read(sources: list[str | Path] | str | Path, cache: RunCache, detail: str | None, warnings: list[str], memos: list[Memo], progress=None):
    """(path, run) of every run of ``sources``, each file once: folders through their index (the runs'
    ``detail``; None: no index), files whole."""
    seen: set[Path] = set()
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    for source in sources:
        source = Path(source)
        pairs = _indexed(source, detail, warnings, memos, progress) if detail and source.is_dir() else None
        if pairs is None:
            pairs = []
            for path in stored_runs(source) if source.is_dir() else [source]:
                try:
                    pairs.append((path, cache.load(path)))
                except BadRun as exc:
                    warnings.append(f"skipped {exc}")
        for path, run in pairs:
            if len(sources) == 1:  # each file once already
                yield path, run
                continue
            where = path.resolve()
            if where not in seen:
                seen.add(where)
                yield path, run


def _accelerated(run: Run) -> bool:
    return any(r.device in speedup.accelerator_ids() for r in run.results)


@dataclass(frozen=True)
class Point:
    """One run's figure of a benchmark: its median and the median's 95% interval, as plotted."""

    run: int
    value: float
    low: float | None
    high: float | None
    unit: str | None = None  # the throughput's unit; None: the value is a median time


def _point(i: int, result: Result) -> Point:
    """Throughput (up is better) where the result records one, else the median time; with its interval."""
    unit = result.unit
    throughput = result.figure(unit) if unit else None  # result.throughput, each property read once (a history has 100,000s)
    interval = result.median_interval()
    if throughput:
        work = throughput * result.median_s
        if interval:
            return Point(i, throughput, work / interval[1], work / interval[0], unit)
        return Point(i, throughput, None, None, unit)
    return Point(i, result.median_s, *(interval or (None, None)), None)


def history(runs: list[tuple[Path, Run]]) -> dict[str, list[Point]]:
    """Per benchmark: one point for each run that has it, in run order."""
    series: dict[str, list[Point]] = defaultdict(list)
    for i, (_, run) in enumerate(runs):
        for r in run.results:
            series[r.name].append(_point(i, r))
    return dict(sorted(series.items()))
