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

from . import work
from .schema import RENAMED, is_throughput_unit
from .stats import median_ci


class BadRun(ValueError):
    """A file that is not a readable benchmark run; the message names the file and the problem."""


# The newest run format this version reads (the top-level ``devicebench.format_version``);
# a newer one is refused rather than misread. Runs without the block (plain
# pytest-benchmark) are read as they are.
READS_FORMAT_VERSION = 1
RUN_FILE = re.compile(r"[0-9]{4,}_.*\.json")
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


_NUMBER_TYPES = {int, float}


def _times(values) -> bool:
    """A list of finite numbers >= 0 (not bools): checked by type, then all at once (a run has millions)."""
    if not isinstance(values, list) or not set(map(type, values)) <= _NUMBER_TYPES:
        return False
    if not values:
        return True
    try:
        total = math.fsum(values)  # NaN or an infinity anywhere makes the sum so
    except (OverflowError, ValueError):  # past the largest float; inf and -inf together
        return False
    return math.isfinite(total) and min(values) >= 0


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
        if rounds is not None and not _times(rounds):
            return f"{where}: stats.data is not a list of finite times"
        info = bench.get("extra_info", {})
        if not isinstance(info, dict):
            return f"{where}: extra_info is not an object"
        for key in ("device", "workload", "variant", "throughput_unit", "dataset", "size"):
            if key in info and info[key] is not None and not isinstance(info[key], str):
                return f"{where}: extra_info.{key} is not a string"
    return None


# What the suite's workloads declared, by (workload, variant), before each result recorded what
# it is read against (``cpu_reference``, ``ceiling``; recorded from 2026-12-02 on): the one
# upgrade of older runs, so that what an old run means does not move when a declaration does.
DECLARED_BEFORE_RECORDED = {
    ("cnn", "bf16"): {"cpu_reference": "resident", "ceiling": None},
    ("cnn", "cudagraph"): {"cpu_reference": "resident", "ceiling": None},
    ("linear_regression", "cudagraph"): {"cpu_reference": "eager", "ceiling": None},
    ("matmul", "fp32"): {"cpu_reference": None, "ceiling": "matmul-fp32"},
    ("matmul", "tf32"): {"cpu_reference": "fp32", "ceiling": "matmul-tf32"},
    ("matmul", "bf16"): {"cpu_reference": "fp32", "ceiling": "matmul-bf16"},
}
# eager_reference and graph_reference came with the compiled variants, which always record them.
READ_AGAINST = ("cpu_reference", "ceiling", "eager_reference", "graph_reference")


def read_against(info: dict, key: str) -> str | None:
    """A result's ``cpu_reference`` (the CPU variant doing its work) or ``ceiling`` (the ceiling
    variant bounding it): as it recorded them, or, stored before results recorded them (no
    ``quality`` block either), as the suite declared them then."""
    if key not in READ_AGAINST:
        raise ValueError(f"unknown reference {key!r}; references: {', '.join(READ_AGAINST)}")
    if key in info or "quality" in info:
        value = info.get(key)
        return value if isinstance(value, str) else None
    return DECLARED_BEFORE_RECORDED.get((info.get("workload"), info.get("variant")), {}).get(key)


@dataclass(frozen=True)
class Result:
    """One benchmark of a run: its median and rounds, and what it recorded (``info``, its extra_info)."""

    name: str
    fullname: str
    median_s: float
    stats: dict
    info: dict

    @property
    def device(self) -> str | None:
        return self.info.get("device")

    @property
    def workload(self) -> str | None:
        return self.info.get("workload")

    @property
    def variant(self) -> str | None:
        return self.info.get("variant")

    @property
    def round_s(self) -> list[float]:
        return list(self.stats.get("data") or [])

    @property
    def rounds(self) -> int:
        return self.stats.get("rounds") or len(self.round_s)

    @property
    def unit(self) -> str | None:
        """The throughput's key and unit (``samples_per_s``, ``tokens_per_s``); None where the run names none, or no unit."""
        unit = self.info.get("throughput_unit")
        return unit if is_throughput_unit(unit) else None

    @property
    def bytes_counted(self) -> str | None:
        """``read + write`` for a copy within a device (each byte moved counts twice); None otherwise."""
        return "read + write" if self.info.get("bytes_counted") == "read + write" else None

    @property
    def throughput(self) -> float | None:
        return self.figure(self.unit) if self.unit else None

    def figure(self, key: str) -> float | None:
        """A stored number (never a bool, never NaN), or None."""
        value = self.info.get(key)
        return value if _is_number(value) else None

    @property
    def noisy(self) -> bool:
        """Its rounds stopped at a limit before the median was known to the precision asked
        (runs stored before rounds stopped on their own say nothing, and are not called noisy)."""
        return self.info.get("target_precision") is not None and self.info.get("stop_reason") not in (None, "converged")

    @property
    def world(self) -> int:
        """Processes or replicas it ran on: DDP's world size, DataParallel's replicas, else 1."""
        return work.world(self.info)

    @property
    def throttled_rounds(self) -> int:
        value = self.info.get("throttled_rounds")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def recompiles_in_rounds(self) -> int:
        """Compiles inside its timed rounds (a compiled step): those rounds timed the compiler."""
        value = self.info.get("recompiles_in_rounds")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    @property
    def per_joule(self) -> float | None:
        """Work per joule (samples/J, TFLOP/J = TFLOP/s per W, ...) where energy was measured."""
        energy = self.figure("energy_per_call_j")
        if not energy or not self.throughput:
            return None
        return self.throughput * self.median_s / energy

    def median_interval(self) -> tuple[float, float] | None:
        """The median's 95% interval in seconds: as recorded, or (a run stored before it was) from
        its rounds; None with fewer than 6 rounds."""
        low, high = self.figure("median_ci_low_s"), self.figure("median_ci_high_s")
        if low is not None and high is not None and low <= self.median_s <= high:
            return low, high
        return median_ci(self.round_s) if len(self.round_s) >= 6 else None

    def how_well_known(self) -> str:
        """How well the figure is known, in words: ``+-0.4%, converged``, ``+-6.1%, time limit (noisy)``, ``throttled 3 rounds``."""
        parts = []
        half_width = self.figure("median_precision")  # the interval's half-width, stored under its old name
        interval = self.median_interval()
        if half_width is None and interval is not None:  # a run stored before: its rounds say it
            low, high = interval
            half_width = max(self.median_s - low, high - self.median_s) / self.median_s
        if half_width is not None:
            parts.append(f"+-{half_width:.1%}")
        reason = self.info.get("stop_reason")
        if reason and "target_precision" in self.info and self.info["target_precision"] is None:
            parts.append("fixed count")  # the CNN's epochs: the accuracy depends on their number
        elif reason:
            parts.append(f"{reason}{' (noisy)' if self.noisy else ''}")
        if self.throttled_rounds:
            parts.append(f"throttled {self.throttled_rounds} rounds")
        if self.recompiles_in_rounds:
            parts.append(f"recompiled {self.recompiles_in_rounds}x in its rounds (they timed the compiler)")
        return ", ".join(parts)


@dataclass(frozen=True)
class Run:
    """A stored run, checked on load (:func:`load`): its results and what it says of its machine."""

    results: tuple[Result, ...]
    raw: dict  # the JSON as stored
    path: Path | None = None
    partial: bool = False  # read from the index: results without rounds (load(path) reads it whole)

    @property
    def machine(self) -> dict:
        """``machine_info.devicebench``: versions, CPU, GPUs, fingerprint; empty for plain pytest-benchmark runs."""
        return (self.raw.get("machine_info") or {}).get("devicebench") or {}

    @property
    def fingerprint(self) -> dict:
        return self.machine.get("fingerprint") or {}

    @property
    def block(self) -> dict:
        """The top-level ``devicebench`` block: size, devices, skips, failures, interruption."""
        return self.raw.get("devicebench") or {}

    @property
    def datetime(self) -> str:
        return self.raw.get("datetime", "")

    @property
    def size(self) -> str | None:
        return self.block.get("bench_size")

    @property
    def interrupted(self) -> bool:
        return bool(self.block.get("interrupted"))

    def reasons(self, key: str, field: str) -> dict[str, str]:
        """``skipped`` or ``failed`` as {fullname: reason or error}."""
        return {e["fullname"]: str(e.get(field, "")) for e in self.block.get(key) or [] if isinstance(e, dict) and "fullname" in e}

    @property
    def skipped(self) -> dict[str, str]:
        return self.reasons("skipped", "reason")

    @property
    def failed(self) -> dict[str, str]:
        return self.reasons("failed", "error")

    def by_name(self) -> dict[str, Result]:
        return {r.name: r for r in self.results}


def _current_keys(info: dict) -> dict:
    """A stored result's figures under today's keys: runs stored before a rename (``gbps``) read as
    if stored now; the file itself is never rewritten."""
    if not any(old in info or info.get("throughput_unit") == old for old in RENAMED):
        return info
    info = dict(info)
    for old, new in RENAMED.items():
        if old in info:
            info.setdefault(new, info.pop(old))
        if info.get("throughput_unit") == old:
            info["throughput_unit"] = new
    if info.get("throughput_unit") == "gb_per_s" and info.get("bytes_moved") and info.get("bytes_moved") == 2 * (info.get("nbytes") or 0):
        info.setdefault("bytes_counted", "read + write")  # a copy within a device, stored before it said so
    return info


def as_run(data: dict | Run, path: Path | None = None) -> Run:
    """A :class:`Run` from a run's JSON (checked, as :func:`load_run` checks a file), or the Run itself."""
    if isinstance(data, Run):
        return data
    problem = _problem(data)
    if problem:
        raise BadRun(f"{path or 'run'}: {problem}")
    return _checked_run(data, path)


def _checked_run(data: dict, path: Path | None) -> Run:
    results = tuple(Result(b["name"], b["fullname"], b["stats"]["median"], b["stats"], _current_keys(b.get("extra_info") or {})) for b in data["benchmarks"])
    return Run(results, data, Path(path) if path else None)


def load(path: str | Path) -> Run:
    """A stored run, checked, as a :class:`Run` (:class:`BadRun` with one line otherwise)."""
    return _checked_run(load_run(path), Path(path))  # load_run has checked it


def describe_machine(run: dict | Run) -> str:
    run = as_run(run)
    info = run.machine
    if not info:
        return "machine: unknown (no devicebench block: written by plain pytest-benchmark?)"
    gpus = ", ".join(str(g.get("name", "?")) for g in info.get("gpus") or [] if isinstance(g, dict)) or "no GPU"
    return (
        f"{info.get('cpu_model', 'unknown CPU')} ({info.get('cpu_threads', '?')} threads), {gpus}; torch {info.get('torch', '?')}, "
        f"CUDA {info.get('cuda')}, Python {info.get('python', '?')}; run of {run.datetime or '?'}"
    )
