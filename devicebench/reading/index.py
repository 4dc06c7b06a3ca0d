"""The index beside the runs: what the readers need of every stored run, in SQLite.

Reading a long history from its JSON parses every round of every run, every time (2000 runs
of 80 benchmarks are 1.3 GB). The index keeps, per run file, its size and modification time,
what the run says of its machine, software and commit (``head``), and per result what the
readers need of it: median, rounds, the median's interval, throughput and its unit, device,
workload, variant and its counted work (one JSON row each, :data:`COLUMNS`, kept with its
run: reading a run's figures is then one parse, not one call per figure). A folder's index lives in ``<folder>/.devicebench/index.sqlite`` (or,
where the folder is read-only, in the user's cache); it is brought up to date on every read
(a new, changed or removed file is a row more, rewritten or gone: a new run costs one parse),
and it is only ever a copy: the JSON runs stay the source of truth, and an index of another
version, a damaged one or one that cannot be opened is rebuilt from them (``devicebench
index --rebuild`` does it on purpose).

Why SQLite: it is in Python's standard library (nothing to install, on every CI runner), a
write is a transaction (a killed process leaves the index as it was), and two readers
updating one index at once wait for each other instead of corrupting it. The readers need
rows by machine and run order, not analytics over columns, so DuckDB's speed at scans would
buy nothing here and cost a dependency of 50 MB (docs/measured.md has the figures).

A run read from the index is *partial* (:attr:`Run.partial`): its results carry those
figures only, never the rounds. Whatever needs a whole run (the latest run, the pair a
verdict compares and the runs that lend it their spread) loads it from its file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

from .runs import BadRun, Result, Run, load

VERSION = 1  # the schema; an index of another version is rebuilt
BATCH = 200  # run files read per transaction while the index is brought up to date
FOLDER = ".devicebench"
NAME = "index.sqlite"

SCHEMA = """
CREATE TABLE runs (
    path TEXT PRIMARY KEY,      -- relative to the indexed folder, '/'-separated
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    problem TEXT,               -- why the file is not a readable run (then it has no results)
    head TEXT,                  -- JSON: the run without its benchmarks and skip list
    results TEXT                -- JSON: one row per result, COLUMNS (read a run at a time: one parse, not one per figure)
) WITHOUT ROWID;
CREATE TABLE benchmarks (       -- what a result is, named once for every run that has it
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE    -- JSON: [name, fullname, device, workload, variant]
);
CREATE TABLE analyses (
    key TEXT PRIMARY KEY,       -- digest of a series' values and of the method (history.ANALYSIS)
    value TEXT NOT NULL         -- JSON: what history.analyse found
) WITHOUT ROWID;
"""
# Each result's row in ``runs.results`` ("benchmark": an id of the benchmarks table).
COLUMNS = ("benchmark", "median_s", "rounds", "ci_low", "ci_high", "unit", "throughput", "work")


def _head(run: Run) -> str:
    data = {k: v for k, v in run.raw.items() if k != "benchmarks"}
    if isinstance(data.get("devicebench"), dict):
        data["devicebench"] = {k: v for k, v in data["devicebench"].items() if k != "skipped"}
    machine_info = data.get("machine_info")
    if isinstance(machine_info, dict):  # pytest-benchmark's own CPU details are not read from history
        data["machine_info"] = {k: v for k, v in machine_info.items() if k != "cpu"}
    return json.dumps(data, separators=(",", ":"))


def _rows(run: Run, benchmark_id) -> str:
    rows = []
    for r in run.results:
        interval = r.median_interval()
        counted = {k: r.info[k] for k in ("work", "instructions") if k in r.info}
        throughput = r.throughput
        key = json.dumps([r.name, r.fullname, _text(r.device), _text(r.workload), _text(r.variant)])
        rows.append([benchmark_id(key), r.median_s, r.rounds, *(interval or (None, None)), r.unit if throughput else None, throughput, counted or None])
    return json.dumps(rows, separators=(",", ":"))


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _current(db: sqlite3.Connection) -> bool:
    """Whether ``db`` holds an index of this version."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return db.execute("PRAGMA user_version").fetchone()[0] == VERSION and {"runs", "benchmarks", "analyses"} <= tables


def _remove(place: Path) -> None:
    """An index file gone, with SQLite's write-ahead log and shared memory beside it."""
    for stale in (place, place.with_name(place.name + "-wal"), place.with_name(place.name + "-shm")):
        stale.unlink(missing_ok=True)


def default_location(folder: Path) -> Path:
    return folder / FOLDER / NAME


def _cache_location(folder: Path) -> Path:
    """Where the index of a folder that cannot be written goes: the user's cache, one file per folder."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return base / "devicebench" / "index" / f"{digest}.sqlite"


def _connect(path: Path | None) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:" if path is None else path, timeout=60, isolation_level=None)
    if path is not None:
        db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
    return db


class Index:
    """One folder's index (open with :meth:`open`): :meth:`update` it, then :meth:`runs`."""

    def __init__(self, folder: Path, db: sqlite3.Connection, location: Path | None):
        self.folder, self.db, self.location = folder, db, location
        self.parsed = 0  # run files read this time (new or changed since the index last saw them)

    @classmethod
    def open(cls, folder: str | Path, location: str | Path | None = None, rebuild: bool = False) -> "Index":
        """The index of ``folder``: at ``location``, else beside the runs, else in the user's cache,
        else in memory (then it is built for this one read). Never raises for a bad index: it is rebuilt."""
        folder = Path(folder)
        places = [Path(location)] if location is not None else [default_location(folder), _cache_location(folder)]
        for place in places:
            try:
                place.parent.mkdir(parents=True, exist_ok=True)
                if place.parent.name == FOLDER and not (place.parent / ".gitignore").exists():
                    (place.parent / ".gitignore").write_text("# devicebench's index of the runs here: rebuilt from them at will\n*\n")
                if rebuild:
                    _remove(place)
                return cls(folder, cls._ready(place), place)
            except (OSError, sqlite3.Error):
                continue
        return cls(folder, cls._ready(None), None)

    @staticmethod
    def _ready(place: Path | None) -> sqlite3.Connection:
        """A connection to an index of this version: an older, newer or damaged one is made anew."""
        db = None
        try:
            db = _connect(place)
            if _current(db):
                return db
        except sqlite3.DatabaseError:  # not an index at all, or damaged
            if db is not None:
                db.close()
            if place is None:
                raise
            _remove(place)
            db = _connect(place)
        db.execute("BEGIN IMMEDIATE")
        try:
            if not _current(db):  # another process may have made it while this one waited
                for table in ("results", "runs", "benchmarks", "analyses"):  # "results": an index of before it was kept per run
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return db

    def close(self) -> None:
        self.db.close()

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    def update(self, files: list[Path], progress=None) -> None:
        """Bring the index up to date with ``files`` (the folder's run files): new and changed ones
        read, removed ones forgotten, a transaction per ``BATCH`` runs (a kill loses at most the
        batch it was in; every row stands for its file alone). ``progress(done, total)`` is called
        before each batch."""
        current = {}
        for path in files:
            try:
                stat = path.stat()
            except OSError:
                continue
            current[self._relative(path)] = (stat.st_size, stat.st_mtime_ns)
        known = {row[0]: (row[1], row[2]) for row in self.db.execute("SELECT path, size, mtime_ns FROM runs")}
        gone = [rel for rel, seen in known.items() if current.get(rel) != seen]
        new = [rel for rel, seen in current.items() if known.get(rel) != seen]
        if not gone and not new:
            return
        new.sort()
        batches = [new[i : i + BATCH] for i in range(0, len(new), BATCH)] or [[]]
        for i, batch in enumerate(batches):
            if progress is not None:
                progress(i * BATCH, len(new))
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if i == 0:
                    self.db.executemany("DELETE FROM runs WHERE path = ?", [(rel,) for rel in gone])
                for rel in batch:
                    self._add(rel, *current[rel])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.parsed += len(batch)

    def _add(self, rel: str, size: int, mtime_ns: int) -> None:
        try:
            run = load(self.folder / rel)
        except BadRun as exc:
            self.db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, NULL, NULL)", (rel, size, mtime_ns, str(exc)))
            return
        self.db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, NULL, ?, ?)", (rel, size, mtime_ns, _head(run), _rows(run, self._benchmark_id)))

    def _benchmark_id(self, key: str) -> int:
        found = self.db.execute("SELECT id FROM benchmarks WHERE key = ?", (key,)).fetchone()
        return found[0] if found else self.db.execute("INSERT INTO benchmarks (key) VALUES (?)", (key,)).lastrowid

    def runs(self, detail: str = "report") -> tuple[list[Run], list[str]]:
        """Every indexed run (partial: :attr:`Run.partial`), and a warning for each file that is not
        a readable run. ``detail="history"``: each result's median, device, workload and work only."""
        runs, warnings = [], []
        full = detail != "history"
        self.db.execute("BEGIN")  # one snapshot of both tables, whatever another process writes meanwhile
        try:
            names = self.db.execute("SELECT id, key FROM benchmarks").fetchall()
            stored = self.db.execute("SELECT path, problem, head, results FROM runs ORDER BY path").fetchall()
        finally:
            self.db.execute("COMMIT")
        benchmarks = {}  # id -> (name, fullname, what the results of it say alike: shared, for memory)
        for id_, key in names:
            name, fullname, *kind = json.loads(key)
            benchmarks[id_] = (name, fullname, {k: v for k, v in zip(("device", "workload", "variant"), kind) if v is not None})
        for rel, problem, head, rows in stored:
            if problem is not None:
                warnings.append(f"skipped {problem}")
                continue
            try:
                raw, rows = json.loads(head), json.loads(rows)
                results = tuple(_result(row, benchmarks, full) for row in rows)
            except (ValueError, TypeError, KeyError):  # the index was damaged under us
                warnings.append(f"skipped {self.folder / rel}: its index entry is damaged (devicebench index --rebuild)")
                continue
            runs.append(Run(results, raw, self.folder / rel, partial=True))
        return runs, warnings

    def memo(self) -> "Memo":
        """The analyses of series kept in this index (history's change points), for :meth:`Memo.save`."""
        return Memo(self.location, dict(self.db.execute("SELECT key, value FROM analyses")))


class Memo(dict):
    """Analyses of series (a benchmark's history, see :func:`history.analyse`) by the digest of the
    values and the method: a history read again without a new run is not analysed again. Saved
    to the index it came from; what this read did not use is forgotten then."""

    def __init__(self, location: Path | None, entries: dict[str, str]):
        super().__init__(entries)
        self.location = location
        self.used: set[str] = set()
        self.new: dict[str, str] = {}

    def get(self, key, default=None):
        self.used.add(key)
        return super().get(key, default)

    def touch(self, keys) -> None:
        """Keep ``keys`` as used (what an analysis kept whole made, for the next one's use)."""
        self.used.update(k for k in keys if isinstance(k, str))

    def __setitem__(self, key, value):
        self.used.add(key)
        self.new[key] = value
        super().__setitem__(key, value)

    def save(self) -> None:
        """Store the new analyses and forget the unused ones; a cache, so a failure to write loses nothing."""
        stale = [k for k in self if k not in self.used]
        if self.location is None or not (self.new or stale):
            return
        try:
            db = _connect(self.location)
        except sqlite3.Error:
            return
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO analyses VALUES (?, ?)", self.new.items())
            db.executemany("DELETE FROM analyses WHERE key = ?", [(k,) for k in stale])
            db.execute("COMMIT")
        except sqlite3.Error:
            if db.in_transaction:
                db.execute("ROLLBACK")
        finally:
            db.close()
        self.new.clear()


def _result(row: list, benchmarks: dict[int, tuple], full: bool) -> Result:
    id_, median, rounds, low, high, unit, throughput, work = row
    name, fullname, info = benchmarks[id_]
    if full and (unit is not None or low is not None) or work is not None:
        info = dict(info)
        if full and unit is not None:
            info["throughput_unit"], info[unit] = unit, throughput
        if full and low is not None:
            info["median_ci_low_s"], info["median_ci_high_s"] = low, high
        if work is not None:
            info.update(work)
    return Result(name, fullname, median, {"median": median, "rounds": rounds} if full else _NO_STATS, info)


_NO_STATS: dict = {}
