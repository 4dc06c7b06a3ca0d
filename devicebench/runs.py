"""Reading stored runs back, and the figures a person reads off one run.

A run is pytest-benchmark's JSON enriched by the suite. :func:`load_run` checks what it reads
and raises :class:`BadRun` with the file and what is wrong, never a bare traceback.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path


class BadRun(ValueError):
    """A file that is not a readable benchmark run; the message names the file and the problem."""


# The newest run format this version reads (the top-level ``devicebench.format_version``);
# a newer one is refused rather than misread. Runs without the block (plain
# pytest-benchmark) are read as they are.
READS_FORMAT_VERSION = 1
# A run file larger than this is not one the suite wrote (a seed run with every round is a
# few MB); reading it would only burn memory.
MAX_RUN_BYTES = 256 * 2**20


def load_run(path: str | Path) -> dict:
    """A stored run, checked: every shape and number the readers rely on, or :class:`BadRun`."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_RUN_BYTES:
            raise BadRun(f"{path}: {path.stat().st_size:,} bytes, larger than any run ({MAX_RUN_BYTES:,} at most)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadRun(f"{path}: no such file") from None
    except OSError as exc:
        raise BadRun(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRun(f"{path}: not UTF-8 text (byte {exc.start}): not a run") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRun(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); truncated?") from None
    except RecursionError:
        raise BadRun(f"{path}: JSON nested too deeply to be a run") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise BadRun(f"{path}: not a readable run ({exc})") from None
    problem = _problem(data)
    if problem:
        raise BadRun(f"{path}: {problem}")
    return data


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _problem(data) -> str | None:
    """What makes ``data`` unreadable as a run, in one phrase naming where; None when it reads."""
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        return "not a benchmark run (no 'benchmarks' list)"
    for key, kind in (("machine_info", dict), ("commit_info", dict), ("devicebench", dict), ("datetime", str)):
        if key in data and not isinstance(data[key], kind):
            return f"'{key}' is not {'an object' if kind is dict else 'a string'} ({type(data[key]).__name__})"
    block = data.get("devicebench")
    if block is not None:
        version = block.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            return "devicebench.format_version is missing or not a whole number"
        if version > READS_FORMAT_VERSION:
            return f"run format {version} is newer than this devicebench reads ({READS_FORMAT_VERSION}): upgrade devicebench"
        for key in ("skipped", "failed"):
            entries = block.get(key, [])
            if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("fullname", ""), str) for e in entries):
                return f"devicebench.{key} is not a list of objects"
    machine = (data.get("machine_info") or {}).get("devicebench")
    if "devicebench" in (data.get("machine_info") or {}):
        if not isinstance(machine, dict):
            return "machine_info.devicebench is not an object"
        for key, kind in (("cpu_model", str), ("cpu_threads", int), ("torch", str), ("fingerprint", dict), ("gpus", list)):
            if key in machine and machine[key] is not None and not isinstance(machine[key], kind):
                return f"machine_info.devicebench.{key} has the wrong type"
        fingerprint = machine.get("fingerprint") or {}
        for key in ("id", "slug", "cpu_model", "cpu_detail"):
            if fingerprint.get(key) is not None and not isinstance(fingerprint.get(key), str):
                return f"machine_info.devicebench.fingerprint.{key} is not a string"
    for i, bench in enumerate(data["benchmarks"]):
        where = f"benchmarks[{i}]"
        if not isinstance(bench, dict):
            return f"{where} is not an object"
        for key in ("name", "fullname"):
            if not isinstance(bench.get(key), str) or not bench[key]:
                return f"{where} has no {key}"
        where = f"benchmark {bench['name'][:80]!r}"
        stats = bench.get("stats")
        if not isinstance(stats, dict):
            return f"{where}: stats is not an object"
        if not (_is_number(stats.get("median")) and stats["median"] > 0):
            return f"{where}: stats.median is not a finite positive number ({stats.get('median')!r})"
        for key in ("min", "max", "mean", "stddev", "q1", "q3", "iqr", "ld15iqr", "hd15iqr", "ops", "total"):
            if key in stats and stats[key] is not None and not (_is_number(stats[key]) and stats[key] >= 0):
                return f"{where}: stats.{key} is not a finite number >= 0 ({stats[key]!r})"
        if "rounds" in stats and not (isinstance(stats["rounds"], int) and not isinstance(stats["rounds"], bool) and stats["rounds"] >= 1):
            return f"{where}: stats.rounds is not a positive whole number"
        rounds = stats.get("data")
        if rounds is not None and not (isinstance(rounds, list) and all(_is_number(x) and x >= 0 for x in rounds)):
            return f"{where}: stats.data is not a list of finite times"
        info = bench.get("extra_info", {})
        if not isinstance(info, dict):
            return f"{where}: extra_info is not an object"
        for key in ("device", "workload", "variant", "throughput_unit", "dataset", "size"):
            if key in info and info[key] is not None and not isinstance(info[key], str):
                return f"{where}: extra_info.{key} is not a string"
    return None


@dataclass(frozen=True)
class Row:
    name: str
    device: str
    median_s: float
    iqr_s: float
    rounds: int
    cold_start_s: float | None
    throughput: str


def _format_throughput(info: dict) -> str:
    unit = info.get("throughput_unit")
    if not unit or unit not in info:
        return ""
    value = info[unit]
    return f"{value:,.0f} {unit}" if value >= 1000 else f"{value:.4g} {unit}"


def rows(run: dict) -> list[Row]:
    out = []
    for bench in sorted(run["benchmarks"], key=lambda b: b["name"]):
        info, stats = bench.get("extra_info", {}), bench["stats"]
        out.append(
            Row(
                name=bench["name"],
                device=info.get("device", "?"),
                median_s=stats["median"],
                iqr_s=stats.get("iqr", 0.0),
                rounds=stats.get("rounds", 0),
                cold_start_s=info.get("cold_start_s"),
                throughput=_format_throughput(info),
            )
        )
    return out


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def _seconds(info: dict, key: str) -> str:
    value = info.get(key)
    return format_seconds(value) if _is_number(value) else ""


def training_rows(run: dict) -> list[list[str]]:
    """Where each CNN epoch's time goes, and what the training reached: name, data, epoch,
    waiting, in the step, first batch, accuracy, time to accuracy; empty without CNN results."""
    out = []
    for bench in sorted(run["benchmarks"], key=lambda b: b["name"]):
        info = bench.get("extra_info", {})
        if info.get("workload") != "cnn" or "epoch_s" not in info:
            continue
        tta = info.get("time_to_accuracy_s")
        reached = f"{format_seconds(tta)} ({info.get('epochs_to_accuracy')} epochs)" if _is_number(tta) else "not reached"
        accuracy = info.get("val_accuracy")
        out.append(
            [
                bench["name"],
                str(info.get("dataset", "")),
                _seconds(info, "epoch_s"),
                _seconds(info, "data_wait_s"),
                _seconds(info, "step_s"),
                _seconds(info, "first_batch_s"),
                f"{accuracy:.4f}" if _is_number(accuracy) else "",
                f"{info.get('target_accuracy')}: {reached}",
            ]
        )
    return out


def describe_machine(run: dict) -> str:
    info = (run.get("machine_info") or {}).get("devicebench")
    if not info:
        return "machine: unknown (no devicebench block: written by plain pytest-benchmark?)"
    gpus = ", ".join(str(g.get("name", "?")) for g in info.get("gpus") or [] if isinstance(g, dict)) or "no GPU"
    return (
        f"{info.get('cpu_model', 'unknown CPU')} ({info.get('cpu_threads', '?')} threads), {gpus}; torch {info.get('torch', '?')}, "
        f"CUDA {info.get('cuda')}, Python {info.get('python', '?')}; run of {run.get('datetime', '?')}"
    )


@dataclass(frozen=True)
class EventCheck:
    name: str
    median_s: float
    event_median_s: float
    allowance_s: float  # the largest difference that still agrees
    allowance: str  # what it is: "3%", or the sync cost measured in the run
    agrees: bool

    @property
    def relative_diff(self) -> float:
        return abs(self.median_s - self.event_median_s) / self.event_median_s


def check_against_events(run: dict, rel_tol: float = 0.03) -> list[EventCheck]:
    """Each CUDA benchmark's median against CUDA events recorded around the same calls.

    They agree within ``rel_tol`` (3%) of the events' median, or, where the run measured what
    a synchronized round costs beyond its device work (``sync_overhead_max_s``: launching the
    first kernel, waking from the sync, reading the timer), within that cost per call. A
    benchmark's own spread is never an allowance: a noisy benchmark must agree as well.
    """
    checks = []
    for bench in run["benchmarks"]:
        info = bench.get("extra_info", {})
        event_median = info.get("cuda_event_median_s")
        if not event_median:
            continue
        median = bench["stats"]["median"]
        allowance_s, allowance = rel_tol * event_median, f"{rel_tol:.0%}"
        overhead, iterations = info.get("sync_overhead_max_s"), info.get("iterations") or 1
        if overhead and overhead / iterations > allowance_s:
            allowance_s = overhead / iterations
            allowance = f"sync cost {format_seconds(overhead)}" + (f" / {iterations} calls" if iterations > 1 else "")
        checks.append(EventCheck(bench["name"], median, event_median, allowance_s, allowance, abs(median - event_median) <= allowance_s))
    return checks


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


RUN_ID = re.compile(r"[0-9]{1,9}")
RUN_FILE = re.compile(r"[0-9]{4,}_.*\.json")


def _run_time(path: Path) -> str:
    """The run's own time (pytest-benchmark's ``datetime``), for ordering; "" where unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("datetime")
    except (OSError, ValueError, RecursionError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def resolve(arg: str, results_dir: str | Path, machine_slug: str | None = None) -> Path:
    """A run file from a path, or from a run id (``0003``, ``3``, ``latest``) in ``results_dir``.

    ``latest`` is the newest run of this machine (``machine_slug``'s folder, whatever its
    platform folder), by the run's own time. Ids are numbered per platform folder, so an id
    means this machine's run, and one that exists in several folders is ambiguous.
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
    mine = [p for p in runs if machine_slug and machine_slug in p.parts]
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
